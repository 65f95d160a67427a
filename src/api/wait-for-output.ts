// Waiting for a VM's or a container's output to show something: the one mechanism both use.

/** What waitForOutput needs of an instance: its output so far, and its 'output' and 'exit' events. */
export interface OutputSource<Outcome> {
  readonly output: string;
  /** How the instance ended, once it has: its 'exit' event will not come again. */
  readonly outcome?: Outcome | undefined;
  on(event: 'output', listener: () => void): unknown;
  on(event: 'exit', listener: (outcome: Outcome) => void): unknown;
  off(event: 'output', listener: () => void): unknown;
  off(event: 'exit', listener: (outcome: Outcome) => void): unknown;
}

export interface WaitErrors<Outcome> {
  /** The instance ended before the pattern appeared. */
  ended(outcome: Outcome): Error;
  timedOut(): Error;
}

/** Resolves with the output once it matches `pattern`; rejects after `timeoutMs` or if the instance ends first. */
export function waitForOutput<Outcome>(
  source: OutputSource<Outcome>, pattern: string | RegExp, timeoutMs: number, errors: WaitErrors<Outcome>,
): Promise<string> {
  const matches = () => (typeof pattern === 'string' ? source.output.includes(pattern) : pattern.test(source.output));
  if (matches()) return Promise.resolve(source.output);
  if (source.outcome !== undefined) return Promise.reject(errors.ended(source.outcome));
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      source.off('output', onOutput);
      source.off('exit', onExit);
      if (error) reject(error);
      else resolve(source.output);
    };
    const onOutput = () => { if (matches()) done(); };
    const onExit = (outcome: Outcome) => done(matches() ? undefined : errors.ended(outcome));
    const timer = setTimeout(() => done(errors.timedOut()), timeoutMs);
    source.on('output', onOutput);
    source.on('exit', onExit);
  });
}


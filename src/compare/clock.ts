// Timestamps the lines a contender prints: each awaited pattern gets the time (performance.now())
// at which the chunk holding the end of its first matching line arrived.

export interface Stamp {
  at: number;
  line: string;
}

export class LineClock {
  readonly stamps = new Map<string, Stamp>();
  /** When the first complete line arrived. */
  firstLine: Stamp | undefined;
  #partial = '';
  #waiters: { pattern: string; resolve: (s: Stamp) => void }[] = [];

  constructor(readonly patterns: readonly string[]) {}

  feed(chunk: Buffer | string): void {
    const now = performance.now();
    this.#partial += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    let nl: number;
    while ((nl = this.#partial.indexOf('\n')) >= 0) {
      const line = this.#partial.slice(0, nl).replace(/\r$/, '');
      this.#partial = this.#partial.slice(nl + 1);
      this.firstLine ??= { at: now, line };
      for (const p of this.patterns) if (!this.stamps.has(p) && line.includes(p)) this.stamps.set(p, { at: now, line });
    }
    this.#waiters = this.#waiters.filter((w) => {
      const s = this.stamps.get(w.pattern);
      if (s) w.resolve(s);
      return !s;
    });
  }

  /** Resolves when `pattern` (one of the patterns) has been seen; rejects after `timeoutMs`. */
  wait(pattern: string, timeoutMs: number, what: string): Promise<Stamp> {
    const seen = this.stamps.get(pattern);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: no "${pattern}" after ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ pattern, resolve: (s) => { clearTimeout(timer); resolve(s); } });
    });
  }

  /** Milliseconds between two seen patterns. */
  between(from: string, to: string, what: string): number {
    const a = this.stamps.get(from);
    const b = this.stamps.get(to);
    if (!a || !b) throw new Error(`${what}: did not print "${a ? to : from}"`);
    return b.at - a.at;
  }
}

/** The `ns=T` a line of the workload program reports for its own pass, in milliseconds. */
export function selfTimedMs(clock: LineClock, pattern: string, what: string): number {
  const line = clock.stamps.get(pattern)?.line;
  if (line === undefined) throw new Error(`${what}: did not print "${pattern}"`);
  const ns = /\bns=(\d+)\b/.exec(line)?.[1];
  if (ns === undefined) throw new Error(`${what}: no ns= in "${line}"`);
  return Number(ns) / 1e6;
}

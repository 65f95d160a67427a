// OCI hooks: each a program run with the container's state as JSON on its stdin, with only the
// environment the hook names, killed after its timeout. prestart, createRuntime and
// createContainer failing fail `create`; poststart and poststop failing are warnings (runtime
// spec: the lifecycle goes on).

import type { Hook, HookKind, Hooks } from '../container/spec.js';
import { RuntimeError } from './errors.js';
import type { OciState } from './state.js';
import { childProcess } from './child-process.js';
import { envFromList } from '../meta/env-list.js';

const OUTPUT = (text: string) => text.trim().split('\n').slice(-3).join(' | ').slice(0, 400);

/** Runs `hook`; returns undefined on success, or one line saying why it failed. */
export function runHook(kind: HookKind, index: number, hook: Hook, state: OciState): string | undefined {
  const env = envFromList(hook.env);
  const result = childProcess().spawnSync(hook.path, hook.args.slice(1), {
    argv0: hook.args[0] ?? hook.path,
    env,
    input: JSON.stringify(state),
    timeout: hook.timeout === undefined ? undefined : hook.timeout * 1000,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  const what = `${kind} hook #${index} (${hook.path})`;
  // A hook that does not read its stdin is fine (Go's exec, and so runc, ignores EPIPE there too).
  if (result.error && !((result.error as NodeJS.ErrnoException).code === 'EPIPE' && (result.status !== null || result.signal !== null))) {
    const code = (result.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') return `${what} did not finish within ${hook.timeout} s and was killed`;
    return `${what} could not run: ${code ?? result.error.message}`;
  }
  if (result.status === 0) return undefined;
  const how = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.status}`;
  const output = OUTPUT(`${result.stdout ?? ''}\n${result.stderr ?? ''}`);
  return `${what} ${how}${output ? `: ${output}` : ''}`;
}

/** Runs every hook of `kind` in order; the first failure throws (create's hooks). */
export function runHooksOrFail(hooks: Hooks | undefined, kind: HookKind, state: OciState): void {
  for (const [i, hook] of (hooks?.[kind] ?? []).entries()) {
    const failure = runHook(kind, i, hook, state);
    if (failure) throw new RuntimeError(`error running ${failure}`);
  }
}

/** Runs every hook of `kind`; failures are passed to `warn` and the rest still run (poststart, poststop). */
export function runHooksWarn(hooks: Hooks | undefined, kind: HookKind, state: OciState, warn: (message: string) => void): void {
  for (const [i, hook] of (hooks?.[kind] ?? []).entries()) {
    const failure = runHook(kind, i, hook, state);
    if (failure) warn(failure);
  }
}

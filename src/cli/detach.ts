// Starting an instance in the background (`run --detach`, `restore --detach`, `container run
// --detach`): the same tsvmm command again, as a process of its own session whose stderr goes to
// a log in the runtime directory. We wait until its control socket answers, or until it ends,
// in which case its error line (if it wrote one) is what the user sees.

import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { answers } from '../api/control-server.js';
import { ensureRuntimeDir, listInstances, socketPath } from '../api/runtime-dir.js';

/** Set in the background process: no terminal, the console only through the control socket. */
export const DETACHED_ENV = 'TSVMM_DETACHED';
export const DETACH_TIMEOUT_MS = 30_000;

export function isDetached(): boolean {
  return process.env[DETACHED_ENV] === '1';
}

export type BackgroundStart =
  | { kind: 'ready' }
  /** It ended before its socket answered; `errorLine` is its `tsvmm: error:` line, if any. */
  | { kind: 'ended'; errorLine: string | undefined }
  | { kind: 'timeout' };

/**
 * Starts `tsvmm ARGV` in the background and waits until the instance `name` it starts answers.
 * Its stderr goes to `logFile` (make it unique: several starts may race for one name), which is
 * removed once the instance is up or has said why it failed; it stays only when something
 * unexplained happened, for the user to read.
 */
export async function startInBackground(name: string, argv: readonly string[], logFile: string): Promise<BackgroundStart> {
  // node:child_process (and node:dgram behind it) only for a start in the background.
  const { spawn } = await import('node:child_process');
  const log = openSync(logFile, 'w', 0o600);
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../bin/tsvmm.js', import.meta.url)), ...argv], {
    detached: true, stdio: ['ignore', 'ignore', log], env: { ...process.env, [DETACHED_ENV]: '1' },
  });
  closeSync(log);
  child.unref();
  let exited = false;
  child.once('exit', () => { exited = true; });
  // Ours, not another start's that won the name: the record names the process that serves it.
  const ours = () => listInstances().some((r) => r.name === name && r.pid === child.pid);
  const deadline = Date.now() + DETACH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await answers(socketPath(name)) && ours()) {
      rmSync(logFile, { force: true }); // it writes on into the unlinked file, which goes with it
      return { kind: 'ready' };
    }
    if (exited) {
      const errorLine = readFileSync(logFile, 'utf8').split('\n').find((l) => l.startsWith('tsvmm: error:'));
      if (errorLine) rmSync(logFile, { force: true });
      return { kind: 'ended', errorLine };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { kind: 'timeout' };
}

/** A log file of one background start: `NAME.PID.log` in the runtime directory. */
export function backgroundLog(name: string): string {
  return path.join(ensureRuntimeDir(), `${name}.${process.pid}.log`);
}

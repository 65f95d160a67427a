// Starting an instance in the background (`run --detach`, `restore --detach`, `container run
// --detach`): the same tsvmm command again, as a process of its own session whose stderr goes to
// a log in the runtime directory. We wait until its control socket answers, or until it ends,
// in which case its error line (if it wrote one) is what the user sees.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { answers } from '../api/control-server.js';
import { socketPath } from '../api/runtime-dir.js';

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

export async function startInBackground(name: string, argv: readonly string[], logFile: string): Promise<BackgroundStart> {
  const log = openSync(logFile, 'w', 0o600);
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../bin/tsvmm.js', import.meta.url)), ...argv], {
    detached: true, stdio: ['ignore', 'ignore', log], env: { ...process.env, [DETACHED_ENV]: '1' },
  });
  closeSync(log);
  child.unref();
  let exited = false;
  child.once('exit', () => { exited = true; });
  const deadline = Date.now() + DETACH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await answers(socketPath(name))) return { kind: 'ready' };
    if (exited) {
      const errorLine = readFileSync(logFile, 'utf8').split('\n').find((l) => l.startsWith('tsvmm: error:'));
      return { kind: 'ended', errorLine };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { kind: 'timeout' };
}

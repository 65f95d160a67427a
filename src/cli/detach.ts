// Starting an instance in the background (`run --detach`, `restore --detach`, `container run
// --detach`): the same tsvmm command again, as a process of its own session whose stderr goes to
// a log in the runtime directory. It tells us on a pipe (its fd 3) once the instance is up with
// everything set up (a VM's vCPUs started; a container's network made and its command exec'd);
// if it ends first, its error line (if it wrote one) is what the user sees. Its control socket
// answering is not enough: a container's name is claimed (and its socket answers) before its
// network and its init exist, and a set-up step that fails after the claim must still reach the
// caller.

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { removeFile } from '../meta/remove-file.js';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ensureRuntimeDir } from '../api/runtime-dir.js';
import { TsvmmError } from '../errors.js';
import { reportError } from './output.js';

/** Set in the background process: no terminal, the console only through the control socket. */
export const DETACHED_ENV = 'TSVMM_DETACHED';
/** Set in the background process: the descriptor of the pipe on which it says it is up. */
const READY_FD_ENV = 'TSVMM_READY_FD';
export const DETACH_TIMEOUT_MS = 30_000;

/**
 * Taken once, at start-up, and out of the environment: the instance's own children (a container's
 * helper, `ip`) must not think they are the ones to report.
 */
let readyFd: number | undefined = process.env[DETACHED_ENV] === '1' && /^\d+$/.test(process.env[READY_FD_ENV] ?? '') ? Number(process.env[READY_FD_ENV]) : undefined;
delete process.env[READY_FD_ENV];

export function isDetached(): boolean {
  return process.env[DETACHED_ENV] === '1';
}

/**
 * In the background process: the instance is up, with everything set up; the start that waits
 * for it may return. Once; nothing outside the background process.
 */
export function signalReady(): void {
  if (readyFd === undefined) return;
  const fd = readyFd;
  readyFd = undefined;
  try {
    writeSync(fd, 'ready\n');
  } catch { /* the start that waited has gone (Ctrl-C): nobody to tell */ }
  try {
    closeSync(fd);
  } catch { /* already closed */ }
}

export type BackgroundStart =
  | { kind: 'ready' }
  /**
   * It ended before it was up: `errorLine` is its `tsvmm: error:` line, if any, and `code` its
   * exit code (null if a signal ended it).
   */
  | { kind: 'ended'; errorLine: string | undefined; code: number | null }
  /** Not up in time; it was asked to stop (SIGTERM), and its log is kept. */
  | { kind: 'timeout' };

/**
 * Starts `tsvmm ARGV` in the background and waits until the instance it starts is up. Its stderr
 * goes to `logFile` (make it unique: several starts may race for one name), which is removed
 * once the instance is up or has said why it failed; it stays only when something unexplained
 * happened, for the user to read.
 */
export async function startInBackground(argv: readonly string[], logFile: string): Promise<BackgroundStart> {
  // node:child_process (and node:dgram behind it) only for a start in the background.
  const { spawn } = await import('node:child_process');
  const log = openSync(logFile, 'w', 0o600);
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../bin/tsvmm.js', import.meta.url)), ...argv], {
    detached: true, stdio: ['ignore', 'ignore', log, 'pipe'], env: { ...process.env, [DETACHED_ENV]: '1', [READY_FD_ENV]: '3' },
  });
  closeSync(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Only this child holds the pipe's other end (its own children get fd 3 replaced or closed
  // with it), so what it says is about our start, not another's that won the name. "ready"
  // comes before the pipe closes; a pipe that closes without it means the start ended first.
  const pipe = child.stdio[3] as Readable;
  const said = new Promise<boolean>((resolve) => {
    let text = '';
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('ready\n')) resolve(true);
    });
    pipe.once('close', () => resolve(text.includes('ready\n')));
    pipe.on('error', () => { /* 'close' follows */ });
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), DETACH_TIMEOUT_MS); });
  const result = await Promise.race([said, timedOut]);
  clearTimeout(timer);
  pipe.destroy();
  if (result === true) {
    child.unref();
    removeFile(logFile); // it writes on into the unlinked file, which goes with it
    return { kind: 'ready' };
  }
  if (result === 'timeout') {
    // Told it failed, the user must not find it running later; it cleans up as on any stop.
    child.kill('SIGTERM');
    child.unref();
    return { kind: 'timeout' };
  }
  const code = await exited;
  const errorLine = readFileSync(logFile, 'utf8').split('\n').find((l) => l.startsWith('tsvmm: error:'));
  if (errorLine) removeFile(logFile);
  return { kind: 'ended', errorLine, code };
}

/** A log file of one background start: `NAME.PID.log` in the runtime directory. */
export function backgroundLog(name: string): string {
  return path.join(ensureRuntimeDir(), `${name}.${process.pid}.log`);
}

/**
 * A start that did not come up, told the caller: the background process's own error line (and
 * its exit code: 127 for a container command not found), else one line naming its log. Returns
 * the exit code.
 */
export function reportBackgroundFailure(name: string, started: Exclude<BackgroundStart, { kind: 'ready' }>, logFile: string): number {
  if (started.kind === 'timeout') {
    return reportError(new TsvmmError('TIMEOUT', `${name} did not come up within ${DETACH_TIMEOUT_MS / 1000} s and was stopped (see ${logFile})`));
  }
  if (started.errorLine) {
    process.stderr.write(`${started.errorLine}\n`);
    return started.code || 1;
  }
  return reportError(new TsvmmError('SETUP', `${name} ended before it was up (see ${logFile})`));
}

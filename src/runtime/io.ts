// What one tsvmm-runc command runs with, as a value rather than process-wide state: the cold
// process (src/runtime/main.ts) has its own; the warm create server (src/runtime/warm-server.ts)
// makes one per request from what the caller's front end sent, so that concurrent creates do
// not share their output, directory, environment or helper.

import { writeSync } from 'node:fs';
import { announcedHelper, type ForkedHelper } from './helper.js';
import { sleepSync } from '../meta/sleep-sync.js';

export interface RuncIo {
  /** Writes to the caller's stdout / stderr. */
  stdout(text: string): void;
  stderr(text: string): void;
  /** The caller's working directory: relative --root, --bundle, --pid-file, --log and --console-socket are from here. */
  cwd: string;
  env: Record<string, string | undefined>;
  /** The caller's pid: the front end whose child the forked helper is, and whose cgroup relative cgroup paths start from. */
  pid: number;
  /** The helper bin/tsvmm-runc's front end forked for create, if it did. */
  helper?: ForkedHelper;
  /** In the warm server: nothing may be spawned (a helper would be the server's child, not the caller's). */
  warm: boolean;
}

/** All of `data` to `fd`, also when the caller gave us a non-blocking pipe (EAGAIN: wait a little); false if the reader went away. */
export function writeAllSync(fd: number, data: string | Uint8Array): boolean {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  for (let done = 0; done < bytes.length;) {
    try {
      done += writeSync(fd, bytes, done);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return false;
      sleepSync(1);
    }
  }
  return true;
}

/** Ours; '/' if it has been removed (then only absolute paths mean anything, as before). */
function workingDirectory(): string {
  try {
    return process.cwd();
  } catch {
    return '/';
  }
}

/** This process's own: the cold path. */
export function coldIo(): RuncIo {
  return {
    stdout: (text) => { process.stdout.write(text); },
    stderr: (text) => { process.stderr.write(text); },
    cwd: workingDirectory(),
    env: process.env,
    pid: process.pid,
    helper: announcedHelper(),
    warm: false,
  };
}

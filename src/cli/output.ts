// How the CLI talks to people: one line per user error, no stack trace; a stack only for bugs.

import { isTsvmmError } from '../errors.js';

export function errorLine(message: string): string {
  return `tsvmm: error: ${message}`;
}

/** Prints an error the right way for its kind and returns the process exit code. */
export function reportError(error: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  if (isTsvmmError(error)) {
    stderr.write(`${errorLine(error.message)}\n`);
    return 1;
  }
  stderr.write(`tsvmm: internal error (a bug; please report it):\n${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}

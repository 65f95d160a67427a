// How the CLI talks to people: one line per user error, no stack trace; a stack only for bugs.

import { isTsvmmError, type TsvmmError } from '../errors.js';

export function errorLine(message: string): string {
  return `tsvmm: error: ${message}`;
}

/** The flag that sets each library option the CLI exposes under another name. */
const FLAGS: Readonly<Record<string, string>> = {
  memory: '--mem', cpus: '--cpus', console: '--console',
};

/** A library error's message in the CLI's words: "memory 1K: ..." becomes "--mem 1K: ...". */
export function cliMessage(error: TsvmmError): string {
  const flag = error.option === undefined ? undefined : FLAGS[error.option];
  return flag !== undefined && error.message.startsWith(`${error.option} `) ? `${flag}${error.message.slice(error.option!.length)}` : error.message;
}

/**
 * Prints an error the right way for its kind and returns the process exit code. With `json`
 * (a command's --json), a user error is one JSON line too: {"error":{"code","message"}}.
 */
export function reportError(error: unknown, stderr: NodeJS.WritableStream = process.stderr, json = false): number {
  if (isTsvmmError(error)) {
    stderr.write(json ? `${JSON.stringify({ error: { code: error.code, message: cliMessage(error) } })}\n` : `${errorLine(cliMessage(error))}\n`);
    return 1;
  }
  stderr.write(`tsvmm: internal error (a bug; please report it):\n${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}

// Every error tsvmm raises on purpose is a TsvmmError with a stable `code`. The CLI prints
// `message` as one line for these and exits non-zero; anything else is a bug and keeps its stack.

export class TsvmmError extends Error {
  readonly code: string;
  /**
   * The library option the error is about ("memory", "cpus"), when the message starts with it:
   * the CLI says its flag there instead (cli/output.ts).
   */
  readonly option?: string;

  constructor(code: string, message: string, options?: { cause?: unknown; option?: string }) {
    super(message, options);
    this.name = 'TsvmmError';
    this.code = code;
    if (options?.option !== undefined) this.option = options.option;
  }
}

export function isTsvmmError(error: unknown): error is TsvmmError {
  return error instanceof TsvmmError;
}

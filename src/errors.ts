// Every error tsvmm raises on purpose is a TsvmmError with a stable `code`. The CLI prints
// `message` as one line for these and exits non-zero; anything else is a bug and keeps its stack.

export class TsvmmError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsvmmError';
    this.code = code;
  }
}

export function isTsvmmError(error: unknown): error is TsvmmError {
  return error instanceof TsvmmError;
}

// tsvmm-runc's errors: one line each, worded as runc words them where engines read the words
// (containerd maps "does not exist" to NotFound), and runc's exit status, 1.

import { TsvmmError } from '../errors.js';

export class RuntimeError extends TsvmmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RUNTIME', message, options);
    this.name = 'RuntimeError';
  }
}

export const notExist = (id: string) => new RuntimeError(`container "${id}" does not exist`);

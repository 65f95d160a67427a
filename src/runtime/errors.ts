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

/**
 * Thrown by a warm create (src/runtime/warm-server.ts) that the server cannot carry out as the
 * cold process would (it needs a helper of its own: hooks, --preserve-fds) before anything is
 * done: the front end then runs it cold. Not a TsvmmError, so that nothing reports it as a failure.
 */
export class ColdNeeded extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ColdNeeded';
  }
}

// The container runtime's errors: a TsvmmError whose message is the one line the CLI prints.

import { TsvmmError } from '../errors.js';

export type ContainerErrorCode =
  /** A bundle, flag or library option we cannot or will not run. */
  | 'BAD_CONFIG'
  /** An OCI bundle field tsvmm does not implement. */
  | 'UNSUPPORTED'
  /** Neither cgroup v2 nor v1 offers what the container needs. */
  | 'NO_CGROUPS'
  /** A cgroup file refused a value, or a cgroup could not be made or removed. */
  | 'CGROUP'
  /** The bridge, the veth pair or an address could not be set up. */
  | 'NETWORK'
  /** The init helper is missing, or a step of the plan failed before the workload ran. */
  | 'SETUP'
  /** An operation that the container's current state does not allow. */
  | 'CONTAINER_STATE';

export class ContainerError extends TsvmmError {
  declare readonly code: ContainerErrorCode;

  constructor(code: ContainerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ContainerError';
  }
}

// The OCI container lifecycle as runc enforces it: which operation each status allows, and the
// words runc uses to refuse the others. Pure, so that every refused transition has a unit test.
//
//   (create) → created ──start──▶ running ──pause──▶ paused
//                 │                 │  ▲──resume────────┘
//                 └──kill/exit──────┴──▶ stopped ──delete──▶ (gone)

import { RuntimeError } from './errors.js';

/** "creating" is the span of `create` itself, before the init waits (hooks see it). */
export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export type Operation = 'start' | 'kill' | 'pause' | 'resume' | 'exec' | 'delete' | 'delete --force';

/** Throws runc's refusal if `operation` may not be done to container `id` in `status`. */
export function checkTransition(operation: Operation, status: Status, id: string): void {
  const refuse = (message: string): never => {
    throw new RuntimeError(message);
  };
  switch (operation) {
    case 'start':
      if (status === 'created') return;
      if (status === 'stopped') refuse('cannot start a container that has stopped');
      return refuse(status === 'creating' ? `cannot start container ${id}: it is still being created` : 'cannot start an already running container');
    case 'kill':
      if (status === 'stopped' || status === 'creating') refuse('container not running');
      return;
    case 'pause':
      if (status !== 'running' && status !== 'created') refuse('container not running');
      return;
    case 'resume':
      if (status !== 'paused') refuse('container not paused');
      return;
    case 'exec':
      if (status === 'stopped' || status === 'creating') refuse('cannot exec in a stopped container');
      if (status === 'paused') refuse('cannot exec in a paused container');
      return;
    case 'delete':
      if (status === 'stopped' || status === 'created') return;
      return refuse(`cannot delete container ${id} that is not stopped: ${status}`);
    case 'delete --force':
      return;
  }
}

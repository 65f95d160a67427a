// node:child_process, loaded on first use. Loading it loads net and the streams too, some forty
// built-in modules that Node compiles on their first require (10-20 ms of a loaded machine's
// time); a static import would make every tsvmm-runc verb pay that at start-up, also the
// `create` whose helper the front end forked (src/runtime/helper.ts) and which spawns nothing.

import { createRequire } from 'node:module';

type ChildProcessModule = typeof import('node:child_process');

const load = createRequire(import.meta.url);
let loaded: ChildProcessModule | undefined;

const beforeSpawn = new Set<() => void>();

/**
 * `fn` runs whenever node:child_process is asked for, i.e. before anything is spawned: what must
 * not be inherited (the socket of the helper bin/tsvmm-runc forked, which Node cannot mark
 * close-on-exec) is let go there, whoever spawns.
 */
export function onSpawn(fn: () => void): void {
  beforeSpawn.add(fn);
}

export function childProcess(): ChildProcessModule {
  for (const fn of beforeSpawn) fn();
  return loaded ??= load('node:child_process') as ChildProcessModule;
}

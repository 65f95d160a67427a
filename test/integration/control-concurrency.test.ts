// Control operations on one VM from several clients at once, through the real control socket of
// a VM in the background: they run one at a time, every answer is true when it arrives, and a
// stop during a snapshot neither crashes the VMM nor leaves a partial file.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { request, status } from '../../src/api/control-client.js';
import { listInstances, readOutcome, runtimeDir } from '../../src/api/runtime-dir.js';
import { openSnapshot } from '../../src/snapshot/index.js';
import type { TsvmmError } from '../../src/errors.js';

const ROUNDS = 5;
const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-race-'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startVm(name: string): void {
  // The guest writes 64 MiB of RAM and then prints a line at a time: a snapshot has memory to
  // save for a while, and a running guest makes exits that a paused one does not.
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', 'run', '--detach', '--name', name, '--mem', '96M',
    '--kernel', TEST_ELF, '--cmdline', 'mode=touch bytes=67108864 pause=20000'], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
}

/** Settles like Promise.allSettled, but keeps the error code of a rejection. */
async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; code: string; message: string }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, code: (error as TsvmmError).code, message: (error as Error).message };
  }
}

async function expectSnapshotFile(file: string): Promise<void> {
  const snapshot = await openSnapshot(file);
  await snapshot.close();
}

async function gone(name: string): Promise<void> {
  await expect.poll(() => listInstances().some((r) => r.name === name), { timeout: 20_000 }).toBe(false);
  expect(existsSync(path.join(runtimeDir(), `${name}.sock`))).toBe(false);
  // It ended as asked, not by a crash (a VMM that dies leaves no outcome at all).
  expect(readOutcome(name)?.outcome).toBe('stopped');
}

describe.skipIf(kvmMissingReason)('concurrent control operations on one VM', () => {
  const started: string[] = [];
  afterAll(async () => {
    for (const name of started) await request(name, 'stop').catch(() => undefined);
  });

  it('two snapshots and a pause at once: all answered, and the VM is really paused', { timeout: 180_000 }, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const name = `race-${process.pid}-p${round}`;
      started.push(name);
      startVm(name);
      await sleep(300);
      const file = (tag: string) => path.join(dir, `${name}-${tag}.snap`);
      const [a, b, paused] = await Promise.all([
        outcome(request(name, 'snapshot', { path: file('a'), timeoutMs: 60_000 })),
        outcome(request(name, 'snapshot', { path: file('b'), timeoutMs: 60_000 })),
        outcome(request<{ state: string }>(name, 'pause', { timeoutMs: 60_000 })),
      ]);
      expect(a, `round ${round}`).toMatchObject({ ok: true });
      expect(b, `round ${round}`).toMatchObject({ ok: true });
      expect(paused, `round ${round}`).toMatchObject({ ok: true, value: { state: 'paused' } });
      await expectSnapshotFile(file('a'));
      await expectSnapshotFile(file('b'));
      // Paused means the vCPUs make no exits at all, whatever order the requests were served in.
      const before = await status(name);
      await sleep(300);
      const after = await status(name);
      expect(after.state).toBe('paused');
      expect(after.exits, `round ${round}: the VM runs while it says paused`).toBe(before.exits);
      await request(name, 'stop');
      await gone(name);
    }
  });

  it('stop during a snapshot: the VMM ends cleanly and the snapshot is whole or not written', { timeout: 180_000 }, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const name = `race-${process.pid}-s${round}`;
      started.push(name);
      startVm(name);
      await sleep(300);
      const file = path.join(dir, `${name}.snap`);
      const snapshot = outcome(request(name, 'snapshot', { path: file, timeoutMs: 60_000 }));
      // Stop while the writer is (most likely) reading guest memory, later in each round.
      await sleep(round * 15);
      const [saved, stopped, pausedAfter] = await Promise.all([
        snapshot,
        outcome(request(name, 'stop', { timeoutMs: 60_000 })),
        outcome(request(name, 'pause', { timeoutMs: 60_000 })),
      ]);
      expect(stopped, `round ${round}`).toMatchObject({ ok: true, value: { stopping: true } });
      if (saved.ok) await expectSnapshotFile(file);
      else {
        expect(saved, `round ${round}`).toMatchObject({ code: 'VM_STOPPED' });
        expect(existsSync(file)).toBe(false);
      }
      // A pause asked for after stop is refused for what it is, not left unanswered.
      if (!pausedAfter.ok) expect(pausedAfter.code, pausedAfter.message).toMatch(/VM_STATE|NOT_RESPONDING|NO_SUCH_INSTANCE/);
      await gone(name);
    }
  });
});

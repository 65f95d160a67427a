// How an instance ended, left beside the records for watchers (the dashboard), and the host
// memory an instance is shown with: real files, real /proc.

import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cgroupMemory, processMemory } from '../../src/api/host-memory.js';
import { OUTCOME_KEEP_MS, OUTCOME_SWEEP_EVERY_MS, OUTCOMES_SWEPT, listInstances, readOutcome, writeOutcome, writeRecord } from '../../src/api/runtime-dir.js';

const root = mkdtempSync(path.join(tmpdir(), 'tsvmm-outcome-'));

describe('instance outcomes', () => {
  it('are read back by name, are not records, and replace an earlier one of the same name', () => {
    const dir = path.join(root, 'a');
    mkdirSync(dir);
    writeRecord({ name: 'live', kind: 'vm', pid: process.pid, startedAt: Date.now(), cpus: 1, memory: 2 ** 28, image: 'x' }, dir);
    writeOutcome({ name: 'web', kind: 'vm', endedAt: 5, outcome: 'guest powered off (ACPI S5)' }, dir);
    expect(readOutcome('web', dir)).toEqual({ name: 'web', kind: 'vm', endedAt: 5, outcome: 'guest powered off (ACPI S5)' });
    // listInstances neither lists nor removes it (nor the live record).
    expect(listInstances(dir).map((r) => r.name)).toEqual(['live']);
    expect(readOutcome('web', dir)).toBeDefined();
    writeOutcome({ name: 'web', kind: 'vm', endedAt: 9, outcome: 'stopped' }, dir);
    expect(readOutcome('web', dir)?.outcome).toBe('stopped');
    expect(readOutcome('nobody', dir)).toBeUndefined();
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('are pruned once older than OUTCOME_KEEP_MS, looked for at most every OUTCOME_SWEEP_EVERY_MS, and a file that is not one reads as none', () => {
    const dir = path.join(root, 'b');
    mkdirSync(dir);
    writeOutcome({ name: 'old', kind: 'container', endedAt: 1, outcome: 'exited with code 0' }, dir);
    const past = (Date.now() - OUTCOME_KEEP_MS - 60_000) / 1000;
    utimesSync(path.join(dir, 'old.outcome'), past, past);
    // Looked for a moment ago (by the first write): not yet again.
    writeOutcome({ name: 'other', kind: 'container', endedAt: 2, outcome: 'exited with code 1' }, dir);
    expect(readOutcome('old', dir)).toBeDefined();
    const lastSweep = (Date.now() - OUTCOME_SWEEP_EVERY_MS - 1000) / 1000;
    utimesSync(path.join(dir, OUTCOMES_SWEPT), lastSweep, lastSweep);
    writeOutcome({ name: 'new', kind: 'container', endedAt: 2, outcome: 'exited with code 1' }, dir);
    expect(readOutcome('old', dir)).toBeUndefined();
    expect(readOutcome('other', dir)).toBeDefined();
    expect(readOutcome('new', dir)?.outcome).toBe('exited with code 1');
    writeFileSync(path.join(dir, 'junk.outcome'), '{"outcome": 3}');
    expect(readOutcome('junk', dir)).toBeUndefined();
  });

  it('are written though an entry vanishes while they are swept (another sweep, or a new instance of its name, removed it)', () => {
    const dir = path.join(root, 'c');
    mkdirSync(dir);
    // An entry that readdir lists and stat cannot find: what such a race leaves the sweep with.
    symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'gone.outcome'));
    writeOutcome({ name: 'mine', kind: 'container', endedAt: 3, outcome: 'exited with code 0' }, dir);
    expect(readOutcome('mine', dir)?.outcome).toBe('exited with code 0');
  });

  it('are a courtesy: a directory that cannot take them does not fail the instance', () => {
    expect(() => writeOutcome({ name: 'x', kind: 'vm', endedAt: 1, outcome: 'stopped' }, path.join(root, 'missing'))).not.toThrow();
  });
});

describe('host memory', () => {
  it('reads a process\'s RSS, PSS and private memory from smaps_rollup: private ≤ PSS ≤ RSS', () => {
    const m = processMemory('self');
    expect(m.rss).toBeGreaterThan(10 * 2 ** 20);
    expect(m.pss).toBeLessThanOrEqual(m.rss);
    expect(m.private).toBeLessThanOrEqual(m.pss + 4096);
    expect(m.private).toBeGreaterThan(0);
    expect(processMemory(process.pid)).toMatchObject({ rss: expect.any(Number) });
  });

  it('reads a container\'s charge and peak from its memory cgroup files, v1 or v2', () => {
    const v1 = path.join(root, 'v1');
    mkdirSync(v1);
    writeFileSync(path.join(v1, 'memory.usage_in_bytes'), '458752\n');
    writeFileSync(path.join(v1, 'memory.max_usage_in_bytes'), '512000\n');
    expect(cgroupMemory({ memory: v1 })).toEqual({ current: 458752, peak: 512000 });
    const v2 = path.join(root, 'v2');
    mkdirSync(v2);
    writeFileSync(path.join(v2, 'memory.current'), '4096\n');
    expect(cgroupMemory({ unified: v2 })).toEqual({ current: 4096, peak: 4096 });
    writeFileSync(path.join(v2, 'memory.peak'), '8192\n');
    expect(cgroupMemory({ unified: v2 })).toEqual({ current: 4096, peak: 8192 });
    expect(() => cgroupMemory({})).toThrow('the container has no memory cgroup');
  });
});

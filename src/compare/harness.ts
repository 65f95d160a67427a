// `tsvmm compare`: prepares what the measurements need, runs each one (native, container and VM
// in interleaved rounds), and returns the report. Every number in the report comes from a run
// made here; nothing is filled in from constants.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TsvmmError } from '../errors.js';
import { parseSize } from '../vmm/config.js';
import { measureCpu } from './cpu.js';
import { measureDensity } from './density.js';
import { PACKAGE_ROOT, prepare } from './env.js';
import { measureExits } from './exits.js';
import { measureIo } from './io.js';
import { describeMachine } from './machine.js';
import { measureMemory } from './memory.js';
import { measureNet } from './net.js';
import type { CompareReport, Measurement } from './model.js';
import { loadAverage, warningsFor } from './reliability.js';
import type { Options } from './rounds.js';
import { measureSnapshot } from './snapshot.js';
import { measureStart } from './start.js';

export type { Options } from './rounds.js';

export const MEASUREMENTS = ['start', 'memory', 'cpu', 'exits', 'io', 'net', 'density', 'snapshot'] as const;
export type MeasurementName = (typeof MEASUREMENTS)[number];

export interface CompareRequest {
  quick?: boolean;
  runs?: number;
  /** Density budget: bytes or a size such as "1G". */
  budget?: number | string;
  only?: readonly MeasurementName[];
  log?: (line: string) => void;
}

/** Memory of each VM and limit of each container where one size is used (memory, density). */
const INSTANCE_MEMORY = '32M';

/** The options a request asks for, checked (TsvmmError BAD_CONFIG naming the flag). */
export function resolveOptions(req: CompareRequest): Options {
  const quick = req.quick ?? false;
  const runs = req.runs ?? (quick ? 3 : 7);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new TsvmmError('BAD_CONFIG', `--runs ${runs}: a whole number from 1 to 100`);
  const budgetBytes = parseSize(req.budget ?? (quick ? '256M' : '1G'), '--budget');
  if (budgetBytes < parseSize(INSTANCE_MEMORY)) throw new TsvmmError('BAD_CONFIG', `--budget ${String(req.budget)}: less than one instance (${INSTANCE_MEMORY}); try 256M or more`);
  return {
    quick,
    runs,
    // Not shorter with --quick: the VM's figure is the difference of two boots, and a loop much
    // under MIN_LOOP_MS (cpu.ts) drowns in their jitter (150, 164 and 1204 Mops/s in one run).
    lcgLoops: 300_000_000,
    exits: quick ? 20_000 : 200_000,
    ioBytes: (quick ? 32 : 256) * 2 ** 20,
    ioRequest: 128 * 1024,
    netMs: quick ? 250 : 2000,
    netRuns: quick ? Math.min(runs, 2) : runs,
    instanceMemory: INSTANCE_MEMORY,
    budgetBytes,
    densityCap: quick ? 6 : 100,
    densityTimeMs: quick ? 8_000 : 40_000,
    densityRuns: quick ? 1 : 3,
    snapshotMemory: quick ? '32M' : '256M',
  };
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export async function runComparison(req: CompareRequest = {}): Promise<CompareReport> {
  const log = req.log ?? (() => {});
  const o = resolveOptions(req);
  const started = new Date();
  const t0 = performance.now();
  const env = prepare(log);
  const only = new Set<MeasurementName>(req.only?.length ? req.only : MEASUREMENTS);
  const measurements: Measurement[] = [];
  const cpus = describeMachine().cpus;
  const step = async (name: MeasurementName, f: () => Promise<Measurement | Measurement[]>) => {
    if (!only.has(name)) return;
    log(`measuring: ${name}`);
    const t = performance.now();
    const before = loadAverage();
    const m = await f();
    const after = loadAverage();
    const load = before === null || after === null ? before ?? after : Math.max(before, after);
    for (const x of Array.isArray(m) ? m : [m]) {
      const warnings = warningsFor(x, load, cpus, x.id === 'cpu');
      if (warnings.length) x.warnings = [...(x.warnings ?? []), ...warnings];
      measurements.push(x);
    }
    log(`measured: ${name} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  };
  await step('start', () => measureStart(env, o));
  await step('memory', () => measureMemory(env, o));
  await step('cpu', () => measureCpu(env, o));
  await step('exits', () => measureExits(env, o));
  await step('io', () => measureIo(env, o));
  await step('net', () => measureNet(env, o));
  await step('density', () => measureDensity(env, o));
  await step('snapshot', () => measureSnapshot(env, o));
  return {
    tool: 'tsvmm compare',
    version: version(),
    date: started.toISOString(),
    quick: o.quick,
    options: { ...o },
    machine: describeMachine(),
    durationMs: performance.now() - t0,
    measurements,
  };
}

// `tsvmm compare`: prepares what the measurements need, runs each one (native, container and VM
// in interleaved rounds), and returns the report. Every number in the report comes from a run
// made here; nothing is filled in from constants.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseSize } from '../vmm/config.js';
import { measureCpu } from './cpu.js';
import { measureDensity } from './density.js';
import { PACKAGE_ROOT, prepare } from './env.js';
import { measureExits } from './exits.js';
import { measureIo } from './io.js';
import { describeMachine } from './machine.js';
import { measureMemory } from './memory.js';
import type { CompareReport, Measurement } from './model.js';
import type { Options } from './rounds.js';
import { measureSnapshot } from './snapshot.js';
import { measureStart } from './start.js';

export type { Options } from './rounds.js';

export const MEASUREMENTS = ['start', 'memory', 'cpu', 'exits', 'io', 'density', 'snapshot'] as const;
export type MeasurementName = (typeof MEASUREMENTS)[number];

export interface CompareRequest {
  quick?: boolean;
  runs?: number;
  /** Density budget: bytes or a size such as "1G". */
  budget?: number | string;
  only?: readonly MeasurementName[];
  log?: (line: string) => void;
}

export function resolveOptions(req: CompareRequest): Options {
  const quick = req.quick ?? false;
  const runs = req.runs ?? (quick ? 3 : 7);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new RangeError(`--runs ${runs}: a whole number from 1 to 100`);
  const budgetBytes = parseSize(req.budget ?? (quick ? '256M' : '1G'));
  return {
    quick,
    runs,
    lcgLoops: quick ? 30_000_000 : 300_000_000,
    exits: quick ? 20_000 : 200_000,
    ioBytes: (quick ? 32 : 256) * 2 ** 20,
    ioRequest: 128 * 1024,
    instanceMemory: '32M',
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
  const step = async (name: MeasurementName, f: () => Promise<Measurement | Measurement[]>) => {
    if (!only.has(name)) return;
    log(`measuring: ${name}`);
    const t = performance.now();
    const m = await f();
    measurements.push(...(Array.isArray(m) ? m : [m]));
    log(`measured: ${name} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  };
  await step('start', () => measureStart(env, o));
  await step('memory', () => measureMemory(env, o));
  await step('cpu', () => measureCpu(env, o));
  await step('exits', () => measureExits(env, o));
  await step('io', () => measureIo(env, o));
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

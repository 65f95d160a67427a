// Running one contender once: the workload program natively (a child process) or in a container
// (Container.run, in this process), a guest in a VM (Vm.boot, in this process) or a VM in a
// tsvmm process of its own. Each run timestamps the lines it prints (LineClock) from t0, the
// moment just before the spawn / Container.run / Vm.boot call.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cgroupMemory, processMemory } from '../api/host-memory.js';
import { Container } from '../container/container.js';
import { Vm } from '../vmm/vm.js';
import type { VmConfig } from '../vmm/config.js';
import { LineClock } from './clock.js';
import type { CompareEnv } from './env.js';

export interface Ran {
  t0: number;
  /** When the instance was created and start() called (containers and VMs): the start's two parts. */
  tStart?: number;
  clock: LineClock;
}

function exitedBadly(what: string, detail: string, output: string): Error {
  const tail = output.trim().split('\n').slice(-3).join(' | ');
  return new Error(`${what} ${detail}${tail ? `: ${tail}` : ''}`);
}

/** A process whose output lines are timestamped while it runs. */
export interface Watched {
  t0: number;
  clock: LineClock;
  /** Resolves when it exits with 0; rejects when it fails, or kills it after the timeout. */
  exited: Promise<void>;
  kill(): void;
}

/** Spawns argv, timestamping its stdout lines (`patterns`) from t0, just before the spawn. */
export function spawnWatched(argv: string[], patterns: string[], timeoutMs: number, what: string): Watched {
  const clock = new LineClock(patterns);
  let output = '';
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  child.stdout!.on('data', (c: Buffer) => { clock.feed(c); output += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
  const exited = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { kill(); reject(new Error(`${what}: timed out after ${timeoutMs} ms`)); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(exitedBadly(what, `exited with ${code ?? signal}`, output));
    });
  });
  // A caller that gave up on it (another step failed) still sees it end without an unhandled rejection.
  exited.catch(() => {});
  return { t0, clock, exited, kill };
}

/** Runs the workload program natively to its end. */
export async function runNative(env: CompareEnv, args: string[], patterns: string[], timeoutMs: number): Promise<Ran> {
  const p = spawnWatched([env.work, ...args], patterns, timeoutMs, `native compare-work ${args.join(' ')}`);
  await p.exited;
  return { t0: p.t0, clock: p.clock };
}

export interface ContainerRun {
  memory?: string;
  /** "veth": an interface on the tsvmm0 bridge. */
  net?: 'veth';
  /** Runs while the container does (e.g. the far end of a network stream); its failure stops the container. */
  during?: (c: Container, clock: LineClock) => Promise<void>;
}

/** Runs the workload program in a container (the compare bundle) to its end. */
export async function runContainer(env: CompareEnv, args: string[], patterns: string[], timeoutMs: number, opts: ContainerRun = {}): Promise<Ran> {
  const clock = new LineClock(patterns);
  const what = `container compare-work ${args.join(' ')}`;
  const t0 = performance.now();
  const c = Container.create({
    bundle: env.bundle, command: [env.workInContainer, ...args], stopTimeoutMs: 0,
    ...(opts.memory ? { memory: opts.memory } : {}), ...(opts.net ? { net: opts.net } : {}),
  });
  c.on('output', (chunk, stream) => { if (stream === 'stdout') clock.feed(chunk); });
  const tStart = performance.now();
  c.start();
  const timer = setTimeout(() => { void c.stop(0); }, timeoutMs);
  let failed: unknown;
  const during = opts.during?.(c, clock).catch((error: unknown) => { failed = error; void c.stop(0); });
  const outcome = await c.wait();
  clearTimeout(timer);
  await during;
  if (failed !== undefined) throw failed as Error;
  if (outcome.kind !== 'exited' || outcome.code !== 0) throw exitedBadly(what, `ended: ${JSON.stringify(outcome)}`, c.output);
  return { t0, tStart, clock };
}

export interface VmRun {
  /** Runs after Vm.create(), before start() (e.g. to move its tap into a namespace). */
  beforeStart?: (vm: Vm) => void;
  /** Runs while the VM does (e.g. the far end of a network stream); its failure stops the VM. */
  during?: (vm: Vm, clock: LineClock) => Promise<void>;
}

/** Boots a guest in a VM in this process and waits until it shuts down. */
export async function runVm(config: VmConfig, patterns: string[], timeoutMs: number, opts: VmRun = {}): Promise<Ran> {
  const clock = new LineClock(patterns);
  const what = `VM ${config.cmdline ?? ''}`;
  const t0 = performance.now();
  const vm = Vm.create(config);
  vm.on('output', (chunk) => clock.feed(chunk));
  const tStart = performance.now();
  try {
    opts.beforeStart?.(vm);
  } catch (error) {
    await vm.stop();
    throw error;
  }
  vm.start();
  const timer = setTimeout(() => { void vm.stop(); }, timeoutMs);
  let failed: unknown;
  const during = opts.during?.(vm, clock).catch((error: unknown) => { failed = error; void vm.stop(); });
  const outcome = await vm.wait();
  clearTimeout(timer);
  await during;
  if (failed !== undefined) throw failed as Error;
  if (outcome.kind !== 'shutdown') throw exitedBadly(what, `ended: ${JSON.stringify(outcome)}`, vm.output);
  return { t0, tStart, clock };
}

// ---------------------------------------------------------------------------------------------
// Instances that stay up (memory, density): started, ready once they print a line, stopped later.

/**
 * Host memory an instance holds, counted the same way for every kind (src/api/host-memory.ts):
 * `current` is what it adds to the host's total (a process's PSS: pages shared with other
 * processes divided among them; a container's cgroup charge plus its helper process's PSS),
 * `private` what stopping it gives back (private pages; the cgroup charge plus the helper's
 * private pages), `peak` the most it held (VmHWM of a process; the cgroup's peak plus the helper).
 */
export interface HostMemory {
  current: number;
  private: number;
  peak: number;
}

export interface Held {
  /** ms from the start call to the ready line. */
  readyMs: number;
  memory(): HostMemory;
  /** For a container: the resident set of its workload process itself, for comparison. */
  processRss?: () => number;
  stop(): Promise<void>;
}

/** /proc/PID/status VmHWM: the most resident memory the process had, in bytes. */
function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status has no VmHWM`);
  return Number(m[1]) * 1024;
}

/** A process's HostMemory. */
export function processHostMemory(pid: number): HostMemory {
  const m = processMemory(pid);
  return { current: m.pss, private: m.private, peak: peakRss(pid) };
}

function holdProcess(argv: string[], ready: string, timeoutMs: number, what: string): Promise<Held> {
  const clock = new LineClock([ready]);
  return new Promise((resolve, reject) => {
    let stderr = '';
    const t0 = performance.now();
    const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((r) => child.on('close', () => r()));
    const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
    child.stdout!.on('data', (c: Buffer) => clock.feed(c));
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => reject(exitedBadly(what, `exited with ${code ?? signal} before "${ready}"`, stderr)));
    clock.wait(ready, timeoutMs, what).then((s) => resolve({
      readyMs: s.at - t0,
      memory: () => processHostMemory(child.pid!),
      stop: async () => { kill(); await exited; },
    }), (e: unknown) => { kill(); reject(e as Error); });
  });
}

/** The workload program natively, holding (`compare-work hold`). */
export function holdNative(env: CompareEnv, timeoutMs: number): Promise<Held> {
  return holdProcess([env.work, 'hold'], 'work: holding', timeoutMs, 'native compare-work hold');
}

/** A VM in a tsvmm process of its own (`tsvmm run`), its guest halted after one line. */
export function holdVmProcess(env: CompareEnv, memory: string, timeoutMs: number): Promise<Held> {
  return holdProcess([process.execPath, env.cli, 'run', '-q', '--kernel', env.testElf, '--mem', memory, '--cmdline', 'mode=halt'],
    'halt: now', timeoutMs, `tsvmm run --mem ${memory} test.elf mode=halt`);
}

/** The workload program holding in a container with a memory limit. */
export async function holdContainer(env: CompareEnv, memory: string, timeoutMs: number): Promise<Held> {
  const clock = new LineClock(['work: holding']);
  const t0 = performance.now();
  const c = Container.run({ bundle: env.bundle, command: [env.workInContainer, 'hold'], memory, stopTimeoutMs: 2000 });
  c.on('output', (chunk, stream) => { if (stream === 'stdout') clock.feed(chunk); });
  try {
    const s = await Promise.race([
      clock.wait('work: holding', timeoutMs, 'container compare-work hold'),
      c.wait().then((o) => { throw exitedBadly('container compare-work hold', `ended: ${JSON.stringify(o)}`, c.output); }),
    ]);
    return {
      readyMs: s.at - t0,
      memory: () => {
        const charged = cgroupMemory(c.cgroupPaths);
        // The helper (container-init) lives outside the cgroup but exists for this container alone.
        const helper = c.helperPid === undefined ? { pss: 0, private: 0 } : processMemory(c.helperPid);
        return { current: charged.current + helper.pss, private: charged.current + helper.private, peak: charged.peak + helper.pss };
      },
      processRss: () => processMemory(c.pid).rss,
      stop: async () => { await c.stop(); },
    };
  } catch (error) {
    await c.stop(0);
    throw error;
  }
}

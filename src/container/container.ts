// The public face of a container, shaped like Vm: create it, start it, exchange bytes with it,
// pause, resume, update its limits, stop it, and learn how it ended.
//
//   TypeScript (this file)                       container-init (native/container-init.c)
//   config → spec → cgroups made, limits set
//   rootfs (overlay layers) prepared
//   plan ─────────── one JSON line on fd 3 ────▶ clone() into new namespaces; the init waits
//                                                writes the init's pid into cgroup.procs
//   veth into its netns (if --net veth) ◀─ {"pid":N}
//   "go" ───────────────────────────────────────▶ init: mounts, pivot_root, /proc, /dev, masks,
//                                                hostname, no_new_privs, capabilities, execve
//   'running' ◀──────────────────────────────── {"running":true}   (or {"error":...})
//   exit outcome, OOM kills read, cleanup ◀──── {"exit":{"code"|"signal"}}
//
// The helper stays as the init's parent until it ends and passes its status on; it dies with
// us (PR_SET_PDEATHSIG), and the init dies with it, so nothing outlives its supervisor.

import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { accessSync, constants } from 'node:fs';
import { isatty } from 'node:tty';
import { constants as osConstants } from 'node:os';
import { LineReader } from '../api/protocol.js';
import { runtimeDirKey } from '../api/runtime-dir.js';
import { checkLimits, createCgroup, detectCgroups, type CgroupLayout, type CgroupLimits, type ContainerCgroup } from './cgroups.js';
import { checkTerminalSize, resolveContainerConfig, resolveLimits, type ContainerConfig, type ContainerLimits, type ResolvedContainerConfig } from './config.js';
import { ContainerError } from './errors.js';
import { attachVeth, type NetworkAttachment } from './network.js';
import { buildPlan } from './plan.js';
import type { TerminalSize } from '../api/protocol.js';
import { prepareRoot, type PreparedRoot } from './rootfs.js';
import { waitForOutput } from '../api/wait-for-output.js';

export type { ContainerConfig, ContainerLimits } from './config.js';
export type { CgroupLimits } from './cgroups.js';
export { ContainerError, type ContainerErrorCode } from './errors.js';

export type ContainerState = 'created' | 'running' | 'paused' | 'exited';

export type ContainerOutcome =
  /** The workload ended by itself with this exit code. */
  | { kind: 'exited'; code: number; oomKills: number }
  /** A signal ended the workload's init process. */
  | { kind: 'signaled'; signal: string; oomKills: number }
  /** The kernel's OOM killer ended the init process: the container went past its memory limit. */
  | { kind: 'oom'; memoryLimit: number | null; oomKills: number }
  /** Ended by stop(). */
  | { kind: 'stopped'; code: number | null; signal: string | null }
  /** The workload never ran: a setup step failed (the command not found, a mount refused, ...). */
  | { kind: 'error'; message: string; errno: number };

export interface ContainerEvents {
  output: [chunk: Buffer, stream: 'stdout' | 'stderr'];
  exit: [outcome: ContainerOutcome];
}

const OUTPUT_LIMIT = 16 * 1024 * 1024;

import { CONTAINER_INIT } from './helper-path.js';

export { CONTAINER_INIT };

function signalName(signal: number): string {
  return Object.entries(osConstants.signals).find(([, n]) => n === signal)?.[0] ?? `signal ${signal}`;
}

function signalNumber(name: string | null): number {
  return name ? (osConstants.signals as Record<string, number>)[name] ?? 0 : 0;
}

/** The exit status a shell would report: the code, or 128 + the signal; 127/126 for a command not found/not runnable. */
export function exitStatus(outcome: ContainerOutcome): number {
  switch (outcome.kind) {
    case 'exited':
      return outcome.code;
    case 'signaled':
      return 128 + signalNumber(outcome.signal);
    case 'oom':
      return 128 + osConstants.signals.SIGKILL;
    case 'stopped':
      return outcome.code ?? 128 + signalNumber(outcome.signal);
    case 'error':
      if (outcome.message.startsWith('exec ')) return outcome.errno === 2 ? 127 : 126;
      return 1;
  }
}

export function describeContainerOutcome(outcome: ContainerOutcome): string {
  const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;
  switch (outcome.kind) {
    case 'exited':
      return `exited with code ${outcome.code}${outcome.oomKills ? ` (the OOM killer ended ${outcome.oomKills} of its processes)` : ''}`;
    case 'signaled':
      return `killed by ${outcome.signal}`;
    case 'oom':
      return `killed by the OOM killer: out of memory${outcome.memoryLimit ? ` (limit ${mib(outcome.memoryLimit)})` : ''}`;
    case 'stopped':
      return `stopped${outcome.signal ? ` (${outcome.signal})` : ''}`;
    case 'error':
      return outcome.message;
  }
}

interface HelperMessage {
  pid?: number;
  running?: boolean;
  error?: { step: string; message: string; errno: number };
  exit?: { code?: number; signal?: number };
}

/** What each running container must do if this process exits under it; one 'exit' listener for all. */
const live = new Set<() => void>();
process.on('exit', () => { for (const onExit of live) onExit(); });

/** Detected once per process (per TSVMM_CGROUP value): the hierarchies do not move under us. */
const layouts = new Map<string, CgroupLayout>();

export class Container extends EventEmitter<ContainerEvents> {
  readonly config: ResolvedContainerConfig;
  readonly #layout: CgroupLayout;
  #state: ContainerState = 'created';
  #cgroup: ContainerCgroup | undefined;
  #root: PreparedRoot | undefined;
  #net: NetworkAttachment | undefined;
  #helper: ChildProcess | undefined;
  #pid = 0;
  #output: Buffer[] = [];
  #outputBytes = 0;
  #startedAt = 0;
  #endedAt = 0;
  #lastCpuTimeUs = 0;
  #stopping: { timer?: NodeJS.Timeout; deadline: number } | undefined;
  #unrelay: (() => void) | undefined;
  #setupError: { message: string; errno: number } | undefined;
  #exit: { code?: number; signal?: number } | undefined;
  #outcome: ContainerOutcome | undefined;
  readonly #exited: Promise<ContainerOutcome>;
  #resolveExited!: (outcome: ContainerOutcome) => void;
  readonly #running: Promise<void>;
  #resolveRunning!: () => void;

  private constructor(config: ResolvedContainerConfig, layout: CgroupLayout) {
    super();
    this.config = config;
    this.#layout = layout;
    this.#exited = new Promise((resolve) => { this.#resolveExited = resolve; });
    this.#running = new Promise((resolve) => { this.#resolveRunning = resolve; });
  }

  /** Checks the configuration and the host (cgroups, the helper) without starting anything. Throws ContainerError. */
  static create(config: ContainerConfig): Container {
    const resolved = resolveContainerConfig(config);
    try {
      accessSync(CONTAINER_INIT, constants.X_OK);
    } catch {
      throw new ContainerError('SETUP', `the container helper ${CONTAINER_INIT} is not built; run \`npm install\` (or \`npx node-gyp rebuild\`)`);
    }
    if (process.getuid?.() !== 0) throw new ContainerError('SETUP', 'containers need root (namespaces, cgroups and mounts)');
    const key = process.env.TSVMM_CGROUP ?? '';
    let layout = layouts.get(key);
    if (!layout) layouts.set(key, layout = detectCgroups());
    checkLimits(layout, resolved.spec.resources);
    return new Container(resolved, layout);
  }

  /** Creates and starts a container. */
  static run(config: ContainerConfig): Container {
    const container = Container.create(config);
    container.start();
    return container;
  }

  get name(): string {
    return this.config.name;
  }

  get state(): ContainerState {
    return this.#state;
  }

  /** Asked to stop and not yet ended (SIGTERM sent; SIGKILL follows after the stop timeout). */
  get stopping(): boolean {
    return this.#stopping !== undefined && this.#state !== 'exited';
  }

  /** The init process's pid on the host (0 until it exists). */
  get pid(): number {
    return this.#pid;
  }

  /** Everything the container wrote to stdout and stderr so far (with stdio "pipe"). */
  get output(): string {
    return Buffer.concat(this.#output).toString('utf8');
  }

  get uptimeMs(): number {
    if (!this.#startedAt) return 0;
    return (this.#endedAt || performance.now()) - this.#startedAt;
  }

  /** CPU time used by all its processes, µs (from cpuacct.usage or cpu.stat). */
  get cpuTimeUs(): number {
    if (this.#cgroup && this.#state !== 'exited') this.#lastCpuTimeUs = this.#cgroup.cpuTimeUs();
    return this.#lastCpuTimeUs;
  }

  /** The limits as the cgroup files hold them now. */
  get limits(): CgroupLimits {
    if (!this.#cgroup || this.#state === 'exited') throw new ContainerError('CONTAINER_STATE', `container ${this.name} is ${this.#state}`);
    return this.#cgroup.read();
  }

  /** The container's cgroup directories: controller (v1) or "unified" (v2) → path. */
  /** The pid of tsvmm's helper process (container-init) that started it and relays its stdio, while it runs. */
  get helperPid(): number | undefined {
    return this.#helper?.pid;
  }

  get cgroupPaths(): Readonly<Record<string, string>> {
    return this.#cgroup?.paths ?? {};
  }

  get cgroupVersion(): 'v1' | 'v2' {
    return this.#layout.version;
  }

  /** Its address on the tsvmm0 bridge, with --net veth. */
  get address(): string | undefined {
    return this.#net?.address;
  }

  /** What is left to remove should this process die without cleaning up (for the instance record's reaper). */
  get leftovers(): { cgroups: string[]; dirs: string[] } {
    const layer = this.#root?.dir && !this.config.keepUpper ? [this.#root.dir] : [];
    return { cgroups: [...new Set(Object.values(this.cgroupPaths))], dirs: layer };
  }

  /** Its writable layer, when it runs on layers. */
  get upperDir(): string | undefined {
    return this.#root?.upper;
  }

  start(): void {
    if (this.#state !== 'created') throw new ContainerError('CONTAINER_STATE', `cannot start a container that is ${this.#state}`);
    const { spec } = this.config;
    this.#cgroup = createCgroup(this.#layout, {
      name: this.name, dirName: `${this.name}-${runtimeDirKey()}`,
      resources: spec.resources, deviceRules: spec.deviceRules, cgroupsPath: spec.cgroupsPath,
    });
    let helper: ChildProcess;
    try {
      this.#root = prepareRoot(spec.root, this.name, this.config.keepUpper);
      const plan = buildPlan(spec, {
        supervisor: process.pid,
        cgroups: this.#cgroup.plan,
        rootfs: this.#root.rootfs,
        prepare: this.#root.prepare,
        terminal: this.config.terminal,
        waitForHost: this.config.net === 'veth',
      });
      helper = spawn(CONTAINER_INIT, [], { stdio: [...this.#stdio, 'pipe'] });
      (helper.stdio[3] as Duplex).write(`${JSON.stringify(plan)}\n`);
    } catch (error) {
      this.#root?.release();
      void this.#cgroup.remove().catch(() => {});
      throw error;
    }
    this.#helper = helper;
    this.#startedAt = performance.now();
    this.#state = 'running';
    live.add(this.#onProcessExit);

    const channel = helper.stdio[3] as Duplex;
    const reader = new LineReader();
    channel.on('data', (chunk: Buffer) => reader.push(chunk, (line) => this.#onMessage(JSON.parse(line) as HelperMessage)));
    channel.on('error', () => { /* the helper's end closed; 'close' below finishes */ });
    if (this.config.stdio === 'pipe') {
      helper.stdout?.on('data', (chunk: Buffer) => this.#record(chunk, 'stdout'));
      helper.stderr?.on('data', (chunk: Buffer) => this.#record(chunk, 'stderr'));
    } else {
      this.#relayTerminals(helper);
    }
    helper.stdin?.on('error', () => { /* the workload stopped reading */ });
    helper.on('error', (error) => {
      this.#setupError ??= { message: `cannot run the container helper: ${error.message}`, errno: 0 };
    });
    helper.on('close', (code, signal) => void this.#finish(code, signal));
  }

  /**
   * The helper's stdio. "pipe" (and any terminal: the helper relays the pty over these pipes):
   * pipes. "inherit": our files and pipes as they are, but a terminal of ours becomes a pipe
   * that we relay, so that nothing in the container holds the caller's terminal.
   */
  get #stdio(): ('pipe' | 'inherit')[] {
    if (this.config.stdio === 'pipe') return ['pipe', 'pipe', 'pipe'];
    return [0, 1, 2].map((fd) => (isatty(fd) ? 'pipe' : 'inherit'));
  }

  /** stdio "inherit": copies between our terminals and the pipes #stdio put in their place. */
  #relayTerminals(helper: ChildProcess): void {
    helper.stdout?.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    helper.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    const input = helper.stdin;
    if (!input) return;
    const onData = (chunk: Buffer) => input.write(chunk);
    const onEnd = () => input.end();
    process.stdin.on('data', onData).once('end', onEnd).resume();
    this.#unrelay = () => {
      process.stdin.off('data', onData).off('end', onEnd).pause();
    };
  }

  #onMessage(message: HelperMessage): void {
    if (message.pid !== undefined) {
      this.#pid = message.pid;
      if (this.config.net === 'veth') {
        attachVeth(this.name, message.pid).then((net) => {
          this.#net = net;
          (this.#helper?.stdio[3] as Duplex | undefined)?.write('go\n');
        }, (error: Error) => {
          this.#setupError ??= { message: error.message, errno: 0 };
          this.#helper?.kill('SIGKILL');
        });
      }
    } else if (message.running) {
      this.#resolveRunning();
    } else if (message.error) {
      this.#setupError ??= { message: message.error.message, errno: message.error.errno };
    } else if (message.exit) {
      this.#exit = message.exit;
    }
  }

  #record(chunk: Buffer, stream: 'stdout' | 'stderr'): void {
    this.#output.push(chunk);
    this.#outputBytes += chunk.length;
    while (this.#outputBytes > OUTPUT_LIMIT && this.#output.length > 1) this.#outputBytes -= this.#output.shift()!.length;
    this.emit('output', chunk, stream);
  }

  /**
   * We are exiting with the container still running (process.exit, an uncaught error): the
   * helper and the init die with us anyway (PR_SET_PDEATHSIG); what is left to us is the
   * writable layer and the cgroups, which nobody else would remove. Synchronous, as 'exit'
   * handlers must be.
   */
  readonly #onProcessExit = (): void => {
    if (this.#pid) {
      try {
        process.kill(this.#pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    this.#root?.release();
    this.#net?.release();
    this.#cgroup?.removeNow();
  };

  async #finish(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    live.delete(this.#onProcessExit);
    this.#unrelay?.();
    this.#endedAt = performance.now();
    if (this.#stopping?.timer) clearTimeout(this.#stopping.timer);
    const cgroup = this.#cgroup!;
    const oomKills = cgroup.oomKills();
    const memoryLimit = this.config.spec.resources.memory ?? null;
    this.#lastCpuTimeUs = cgroup.cpuTimeUs();
    let outcome: ContainerOutcome;
    const exit = this.#exit;
    if (this.#setupError) {
      outcome = { kind: 'error', ...this.#setupError };
    } else if (exit && this.#stopping) {
      outcome = { kind: 'stopped', code: exit.code ?? null, signal: exit.signal ? signalName(exit.signal) : null };
    } else if (exit?.signal !== undefined) {
      outcome = exit.signal === osConstants.signals.SIGKILL && oomKills > 0
        ? { kind: 'oom', memoryLimit, oomKills }
        : { kind: 'signaled', signal: signalName(exit.signal), oomKills };
    } else if (exit?.code !== undefined) {
      outcome = { kind: 'exited', code: exit.code, oomKills };
    } else if (this.#stopping) {
      outcome = { kind: 'stopped', code: null, signal: signal ?? null };
    } else {
      outcome = { kind: 'error', message: `the container's supervisor ended unexpectedly (${signal ?? `exit code ${code}`})`, errno: 0 };
    }
    this.#state = 'exited';
    this.#net?.release();
    this.#root?.release();
    await cgroup.remove().catch(() => { /* left for the next container of this name, which removes it */ });
    this.#outcome = outcome;
    this.emit('exit', outcome);
    this.#resolveExited(outcome);
  }

  /** Resolves once the workload runs (its command was exec'd); rejects if it ended before. */
  async ready(): Promise<void> {
    const outcome = await Promise.race([this.#running.then(() => undefined), this.#exited]);
    if (outcome) throw new ContainerError('CONTAINER_STATE', `container ${this.name} ${describeContainerOutcome(outcome)} before it ran`);
  }

  /** Resolves when the container has ended and its cgroups and layers are cleaned up. */
  wait(): Promise<ContainerOutcome> {
    return this.#exited;
  }

  /** Sends bytes to its stdin (stdio "pipe"). */
  write(input: string | Uint8Array): void {
    if (this.#state === 'exited' || !this.#helper?.stdin || this.#helper.stdin.destroyed) return;
    this.#helper.stdin.write(input);
  }

  /** With a terminal: changes its size (the kernel sends SIGWINCH to its foreground processes). */
  resize(size: TerminalSize): void {
    if (!this.config.terminal) throw new ContainerError('CONTAINER_STATE', `container ${this.name} has no terminal to resize`);
    const { rows, cols } = checkTerminalSize(size);
    this.config.terminal = { rows, cols };
    if (this.#state === 'exited') return;
    (this.#helper?.stdio[3] as Duplex | undefined)?.write(`${JSON.stringify({ resize: { rows, cols } })}\n`);
  }

  /** Closes its stdin: the workload reads end-of-file. */
  endInput(): void {
    this.#helper?.stdin?.end();
  }

  /** Resolves with the output once it matches `pattern`; rejects after `timeoutMs` or if the container ends first. */
  waitForOutput(pattern: string | RegExp, timeoutMs = 30_000): Promise<string> {
    return waitForOutput<ContainerOutcome>(this, pattern, timeoutMs, {
      ended: (outcome) => new ContainerError('CONTAINER_STATE', `container ${this.name} ${describeContainerOutcome(outcome)} before printing ${String(pattern)}`),
      timedOut: () => new ContainerError('CONTAINER_STATE', `no ${String(pattern)} in the output of ${this.name} after ${timeoutMs} ms`),
    });
  }

  /**
   * SIGTERM to the init process, SIGKILL after `timeoutMs` (default: the config's, 10 s).
   * An init without a SIGTERM handler ignores it (pid 1 of a namespace does), hence the second.
   */
  async stop(timeoutMs = this.config.stopTimeoutMs): Promise<ContainerOutcome> {
    if (this.#state === 'created') {
      this.#state = 'exited';
      this.#outcome = { kind: 'stopped', code: null, signal: null };
      this.#resolveExited(this.#outcome);
      return this.#outcome;
    }
    if (this.#state === 'exited') return this.#exited;
    const deadline = performance.now() + timeoutMs;
    if (this.#stopping) {
      // Stop requests compose: the one that ends soonest wins.
      if (deadline < this.#stopping.deadline) {
        this.#stopping.deadline = deadline;
        clearTimeout(this.#stopping.timer);
        this.#stopping.timer = setTimeout(this.#kill, Math.max(0, timeoutMs));
      }
      return this.#exited;
    }
    this.#stopping = { deadline };
    // Frozen tasks act on no signal until thawed.
    if (this.#state === 'paused') await this.resume().catch(() => {});
    if (this.#pid && timeoutMs > 0) {
      try {
        process.kill(this.#pid, 'SIGTERM');
      } catch { /* already gone */ }
      // A shorter stop may have come while we were thawing.
      if (!this.#stopping.timer) this.#stopping.timer = setTimeout(this.#kill, Math.max(0, this.#stopping.deadline - performance.now()));
    } else {
      this.#kill();
    }
    return this.#exited;
  }

  readonly #kill = (): void => {
    if (this.#pid) {
      try {
        process.kill(this.#pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    // The init dies with the helper (PR_SET_PDEATHSIG) if it has no pid yet.
    this.#helper?.kill('SIGKILL');
  };

  /** Freezes every process in the container (the freezer cgroup). */
  async pause(): Promise<void> {
    if (this.#state !== 'running') throw new ContainerError('CONTAINER_STATE', `cannot pause a container that is ${this.#state}`);
    await this.#cgroup!.freeze();
    this.#state = 'paused';
  }

  async resume(): Promise<void> {
    if (this.#state !== 'paused') throw new ContainerError('CONTAINER_STATE', `cannot resume a container that is ${this.#state}`);
    await this.#cgroup!.thaw();
    this.#state = 'running';
  }

  /** Changes its memory, CPU and process limits in place; resolves with what the cgroup files now hold. */
  update(limits: ContainerLimits): CgroupLimits {
    if (this.#state !== 'running' && this.#state !== 'paused') throw new ContainerError('CONTAINER_STATE', `cannot update a container that is ${this.#state}`);
    const resources = resolveLimits(limits);
    this.#cgroup!.apply(resources);
    Object.assign(this.config.spec.resources, resources);
    return this.#cgroup!.read();
  }
}

// The public face of a container, shaped like Vm: create it, start it, exchange bytes with it,
// pause, resume, update its limits, stop it, and learn how it ended.
//
// It is a layer over the runtime core of tsvmm-runc (src/runtime/runtime.ts), not a runtime of
// its own: the container is launched by Runtime.launch (state under <runtime dir>/containers,
// its cgroups, the plan, the C helper), and paused, resumed, updated, signalled and deleted by
// the runtime's operations with their state checks, so `tsvmm-runc --root <runtime
// dir>/containers list` shows tsvmm's containers too. What this class adds is what an engine
// leaves to its shim: the workload's stdio and pty relayed through the helper (which stays as
// the init's parent, as in `runc run`), the network, layers, stop timeouts and the outcome.
//
//   TypeScript                                   container-init (native/container-init.c)
//   config → spec; layers prepared
//   Runtime.launch: state, cgroups, plan ──fd 3─▶ clone() into new namespaces; the init waits
//                                                writes the init's pid into cgroup.procs
//   veth into its netns (if --net veth) ◀─ {"pid":N}
//   "go" ───────────────────────────────────────▶ init: mounts, pivot_root, /proc, /dev, masks,
//                                                hostname, no_new_privs, capabilities, execve
//   'running' ◀──────────────────────────────── {"running":true}   (or {"error":...})
//   exit outcome, OOM kills read, cleanup ◀──── {"exit":{"code"|"signal"}}
//
// The helper dies with us (PR_SET_PDEATHSIG), and the init dies with it, so nothing outlives
// its supervisor.

import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { isatty } from 'node:tty';
import { constants as osConstants } from 'node:os';
import { containerId, containerStateRoot } from '../api/runtime-dir.js';
import { monotonicMs } from '../meta/clock.js';
import { Log } from '../runtime/log.js';
import { Runtime, type Launch, type LaunchEnd } from '../runtime/runtime.js';
import { checkLimits, detectCgroups, type CgroupLimits } from './cgroups.js';
import { checkTerminalSize, resolveContainerConfig, resolveLimits, type ContainerConfig, type ContainerLimits, type ResolvedContainerConfig } from './config.js';
import { ContainerError } from './errors.js';
import { attachVeth, type NetworkAttachment } from './network.js';
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

/** What each running container must do if this process exits under it; one 'exit' listener for all. */
const live = new Set<() => void>();
process.on('exit', () => { for (const onExit of live) onExit(); });

/**
 * The annotation in a container's runtime state that carries its stop timeout (ms), so that a stop
 * from another process (`tsvmm stop`, src/container/instance.ts) waits as long as this one would.
 */
export const STOP_TIMEOUT_ANNOTATION = 'org.tsvmm.stop-timeout-ms';

/** The stop timeout a container's state records, if it records a sane one. */
export function recordedStopTimeout(annotations: Record<string, string>): number | undefined {
  const ms = Number(annotations[STOP_TIMEOUT_ANNOTATION]);
  return annotations[STOP_TIMEOUT_ANNOTATION] !== undefined && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/**
 * The runtime of tsvmm's containers: one per runtime directory (and TSVMM_CGROUP value), whose
 * cgroup hierarchies are found once per process; they do not move under us.
 */
const runtimes = new Map<string, Runtime>();

export function containerRuntime(): Runtime {
  const root = containerStateRoot();
  const key = `${root}\0${process.env.TSVMM_CGROUP ?? ''}`;
  let runtime = runtimes.get(key);
  if (!runtime) runtimes.set(key, runtime = new Runtime({ root, log: new Log(undefined, 'text', false), systemdCgroup: false, cgroups: detectCgroups() }));
  return runtime;
}

export class Container extends EventEmitter<ContainerEvents> {
  readonly config: ResolvedContainerConfig;
  readonly #runtime: Runtime;
  /** Its OCI bundle, or its root directory. */
  readonly #bundle: string;
  #state: ContainerState = 'created';
  #launch: Launch | undefined;
  #root: PreparedRoot | undefined;
  #net: NetworkAttachment | undefined;
  #pid = 0;
  #output: Buffer[] = [];
  #outputBytes = 0;
  #startedAt = 0;
  #endedAt = 0;
  #lastCpuTimeUs = 0;
  #stopping: { timer?: NodeJS.Timeout; deadline: number } | undefined;
  #unrelay: (() => void) | undefined;
  #outcome: ContainerOutcome | undefined;
  readonly #exited: Promise<ContainerOutcome>;
  #resolveExited!: (outcome: ContainerOutcome) => void;
  readonly #running: Promise<void>;
  #resolveRunning!: () => void;

  private constructor(config: ResolvedContainerConfig, runtime: Runtime, bundle: string) {
    super();
    this.config = config;
    this.#runtime = runtime;
    this.#bundle = bundle;
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
    const runtime = containerRuntime();
    checkLimits(runtime.cgroupLayout(), resolved.spec.resources);
    return new Container(resolved, runtime, path.resolve(config.bundle ?? resolved.spec.root.path));
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
    // Paused or resumed by anyone who reaches the runtime (`tsvmm pause` from another process
    // too): while it lives, its status is the runtime's, read from the host.
    if ((this.#state === 'running' || this.#state === 'paused') && this.#launch) {
      const status = this.#runtime.status(this.#launch.record);
      if (status === 'running' || status === 'paused') this.#state = status;
    }
    return this.#state;
  }

  /** Asked to stop and not yet ended (SIGTERM sent; SIGKILL follows after the stop timeout). */
  get stopping(): boolean {
    return this.#stopping !== undefined && this.#state !== 'exited';
  }

  /** Its id in the runtime's state (<runtime dir>/containers/ID) and its cgroup's name (tsvmm/ID): NAME-KEY, KEY naming the runtime directory. */
  get id(): string {
    return containerId(this.name);
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
    return (this.#endedAt || monotonicMs()) - this.#startedAt;
  }

  /** CPU time used by all its processes, µs (from cpuacct.usage or cpu.stat). */
  get cpuTimeUs(): number {
    if (this.#launch && this.#state !== 'exited') this.#lastCpuTimeUs = this.#launch.cgroup.cpuTimeUs();
    return this.#lastCpuTimeUs;
  }

  /** The limits as the cgroup files hold them now. */
  get limits(): CgroupLimits {
    if (!this.#launch || this.#state === 'exited') throw new ContainerError('CONTAINER_STATE', `container ${this.name} is ${this.#state}`);
    return this.#launch.cgroup.read();
  }

  /** The pid of tsvmm's helper process (container-init) that started it and relays its stdio, while it runs. */
  get helperPid(): number | undefined {
    return this.#helper?.pid;
  }

  get #helper(): ChildProcess | undefined {
    return this.#launch?.helper.process;
  }

  /** The container's cgroup directories: controller (v1) or "unified" (v2) → path. */
  get cgroupPaths(): Readonly<Record<string, string>> {
    return this.#launch?.cgroup.paths ?? {};
  }

  get cgroupVersion(): 'v1' | 'v2' {
    return this.#runtime.cgroupLayout().version;
  }

  /** Its address on the tsvmm0 bridge, with --net veth. */
  get address(): string | undefined {
    return this.#net?.address;
  }

  /** What is left to remove should this process die without cleaning up (for the instance record's reaper). */
  get leftovers(): { cgroups: string[]; dirs: string[] } {
    const layer = this.#root?.dir && !this.config.keepUpper ? [this.#root.dir] : [];
    return { cgroups: [...new Set(Object.values(this.cgroupPaths))], dirs: [...layer, this.#runtime.store.dir(this.id)] };
  }

  /** Its writable layer, when it runs on layers. */
  get upperDir(): string | undefined {
    return this.#root?.upper;
  }

  start(): void {
    if (this.#state !== 'created') throw new ContainerError('CONTAINER_STATE', `cannot start a container that is ${this.#state}`);
    const { spec } = this.config;
    const id = this.id;
    // A container of this name whose supervisor was killed may have left its state and cgroups.
    this.#runtime.clearStale(id);
    this.#root = prepareRoot(spec.root, this.name, this.config.keepUpper);
    let launch: Launch;
    try {
      launch = this.#runtime.launch({
        id, spec: { ...spec, annotations: { ...spec.annotations, [STOP_TIMEOUT_ANNOTATION]: String(this.config.stopTimeoutMs) } }, bundle: this.#bundle, rootfs: this.#root.rootfs, prepare: this.#root.prepare, terminal: this.config.terminal,
        cgroup: { name: this.name, dirName: id, resources: spec.resources, deviceRules: spec.deviceRules, cgroupsPath: spec.cgroupsPath },
        stdio: this.#stdio,
        beforeStart: this.config.net === 'veth' ? async (record) => { this.#net = await attachVeth(this.name, id, record.pid); } : undefined,
        onPid: (pid) => { this.#pid = pid; },
        onStarted: () => this.#resolveRunning(),
      });
    } catch (error) {
      this.#root.release();
      throw error;
    }
    this.#launch = launch;
    this.#startedAt = monotonicMs();
    this.#state = 'running';
    live.add(this.#onProcessExit);

    // Spawned: only tsvmm-runc's create takes a helper its front end forked.
    const helper = launch.helper.process!;
    if (this.config.stdio === 'pipe') {
      helper.stdout?.on('data', (chunk: Buffer) => this.#record(chunk, 'stdout'));
      helper.stderr?.on('data', (chunk: Buffer) => this.#record(chunk, 'stderr'));
    } else {
      this.#relayTerminals(helper);
    }
    helper.stdin?.on('error', () => { /* the workload stopped reading */ });
    void launch.ended.then((end) => this.#finish(end));
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
    this.#root?.release();
    this.#net?.release();
    if (this.#launch) this.#runtime.discardNow(this.#launch.record, this.#launch.cgroup);
  };

  async #finish(end: LaunchEnd): Promise<void> {
    live.delete(this.#onProcessExit);
    this.#unrelay?.();
    this.#endedAt = monotonicMs();
    if (this.#stopping?.timer) clearTimeout(this.#stopping.timer);
    const { record, cgroup } = this.#launch!;
    const oomKills = cgroup.oomKills();
    const memoryLimit = this.config.spec.resources.memory ?? null;
    this.#lastCpuTimeUs = cgroup.cpuTimeUs();
    let outcome: ContainerOutcome;
    const { exit, code, signal } = end;
    if (end.hostError) {
      outcome = { kind: 'error', message: (end.hostError as Error).message, errno: 0 };
    } else if (end.failure) {
      outcome = { kind: 'error', message: end.failure.message, errno: end.failure.errno };
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
    // As `delete` takes a stopped container: its cgroups and its state go.
    await this.#runtime.discard(record, cgroup);
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
    this.#launch?.helper.resize(rows, cols);
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
    const deadline = monotonicMs() + timeoutMs;
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
    if (this.state === 'paused') await this.resume().catch(() => {});
    if (this.#pid && timeoutMs > 0) {
      await this.#signal('SIGTERM');
      // A shorter stop may have come while we were thawing.
      if (!this.#stopping.timer) this.#stopping.timer = setTimeout(this.#kill, Math.max(0, this.#stopping.deadline - monotonicMs()));
    } else {
      this.#kill();
    }
    return this.#exited;
  }

  /** `kill ID SIGNAL` of the runtime; a container already ended is not an error here. */
  async #signal(signal: NodeJS.Signals): Promise<void> {
    try {
      await this.#runtime.kill(this.id, signal, false);
    } catch { /* it has ended (or never got a pid): 'exit' follows */ }
  }

  readonly #kill = (): void => {
    // The init dies with the helper (PR_SET_PDEATHSIG) if it has no pid yet.
    void this.#signal('SIGKILL').finally(() => this.#helper?.kill('SIGKILL'));
  };

  /** Freezes every process in the container (the freezer cgroup). */
  async pause(): Promise<void> {
    if (this.state !== 'running') throw new ContainerError('CONTAINER_STATE', `cannot pause a container that is ${this.#state}`);
    await this.#runtime.pause(this.id);
    this.#state = 'paused';
  }

  async resume(): Promise<void> {
    if (this.state !== 'paused') throw new ContainerError('CONTAINER_STATE', `cannot resume a container that is ${this.#state}`);
    await this.#runtime.resume(this.id);
    this.#state = 'running';
  }

  /** Changes its memory, CPU and process limits in place; resolves with what the cgroup files now hold. */
  update(limits: ContainerLimits): CgroupLimits {
    if (this.#state !== 'running' && this.#state !== 'paused') throw new ContainerError('CONTAINER_STATE', `cannot update a container that is ${this.#state}`);
    const resources = resolveLimits(limits);
    const cgroup = this.#runtime.updateResources(this.id, resources);
    Object.assign(this.config.spec.resources, resources);
    return cgroup.read();
  }
}

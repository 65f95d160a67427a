// The operations of tsvmm-runc, one method per runc command. Each is a separate process run by
// an engine: state goes from one to the next through StateStore, and the container's init is
// the C helper's child (native/container-init.c), waiting on exec.fifo after `create`, so that
// no Node process stays alive per container.

import { closeSync, constants, existsSync, openSync, readFileSync, readSync, unlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { createCgroup, detectCgroups, hostCgroupSources, openCgroup, type CgroupLayout, type CgroupRequest, type ContainerCgroup } from '../container/cgroups.js';
import { cgroupMemory } from '../api/host-memory.js';
import { isTsvmmError } from '../errors.js';
import { writeWhole } from '../meta/write-whole.js';
import { loadBundle, processFromJson, resourcesFromJson } from '../container/oci.js';
import { buildExecPlan, buildPlan, specTerminal, type MountStep, type RuntimePlan } from '../container/plan.js';
import type { TerminalSize } from '../api/protocol.js';
import type { ContainerSpec, Hook, ResourceLimits } from '../container/spec.js';
import { ColdNeeded, RuntimeError } from './errors.js';
import { forkedHelperFits, startHelper, type Helper, type HelperMessage, type HelperSource } from './helper.js';
import { runHooksOrFail, runHooksWarn } from './hooks.js';
import { checkTransition, type Status } from './lifecycle.js';
import type { Log } from './log.js';
import { checkId, initAlive, ociState, ociStateText, StateStore, type ContainerRecord } from './state.js';
import { processStat } from '../meta/pid-alive.js';
import { childProcess } from './child-process.js';
import { sleepSync } from '../meta/sleep-sync.js';

export interface RuntimeOptions {
  root: string;
  log: Log;
  /** cgroupsPath is systemd's "slice:prefix:name"; we place it in the cgroup tree as systemd would. */
  systemdCgroup: boolean;
  /** The host's cgroup hierarchies, if the caller has found them already. */
  cgroups?: CgroupLayout;
  /**
   * The process tsvmm-runc runs for (default: this one) and its environment: relative cgroup
   * paths start from its cgroup, TSVMM_CGROUP is read from its environment.
   */
  caller?: { pid: number; env: Record<string, string | undefined> };
  /** The helper bin/tsvmm-runc's front end forked, and whether one may be spawned instead (src/runtime/helper.ts). */
  helper?: HelperSource;
}

export interface CreateOptions {
  bundle: string;
  /** Our fds 3.. passed to the container's process as its 3.. (runc's --preserve-fds). */
  preserveFds?: number;
  pidFile?: string;
  consoleSocket?: string;
}

/** What `launch` needs: the spec and where the container's root, cgroups and stdio come from. */
export interface LaunchRequest {
  id: string;
  spec: ContainerSpec;
  /** The OCI bundle it came from (the state's "bundle"). */
  bundle: string;
  cgroup: CgroupRequest;
  /** The directory that becomes "/" and the host-side mounts made before it is bound (an overlay). */
  rootfs: string;
  prepare: MountStep[];
  /** A pty of this size for the workload; the helper relays it, or hands it to runtime.consoleSocket. */
  terminal?: TerminalSize;
  /** The runc process model (exec.fifo, console socket, detach); absent for tsvmm's own containers. */
  runtime?: RuntimePlan;
  /** The helper's fds 0-2; default ours. */
  stdio?: ('pipe' | 'inherit' | 'ignore')[];
  /** runc's --preserve-fds. */
  preserveFds?: number;
  /** Host work while the init waits in its namespaces (hooks, the network); a throw kills it. */
  beforeStart?: (record: ContainerRecord) => Promise<void> | void;
  onPid?: (pid: number) => void;
  /** The init waits on exec.fifo (create) or has exec'd the workload. */
  onStarted?: (record: ContainerRecord) => void;
}

export interface LaunchEnd {
  /** The init got as far as waiting for `start` (create) or running the workload. */
  started: boolean;
  /** The helper's exit code or signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How the workload ended, as the helper saw it. */
  exit?: HelperMessage['exit'];
  /** A step that failed before the workload ran. */
  failure?: HelperMessage['error'];
  /** What `beforeStart` threw. */
  hostError?: unknown;
}

export interface Launch {
  record: ContainerRecord;
  cgroup: ContainerCgroup;
  helper: Helper;
  /** Resolves when the helper has ended: after create's init waits, or after the workload ends. */
  ended: Promise<LaunchEnd>;
}

export interface ExecOptions {
  processFile?: string;
  args: string[];
  detach: boolean;
  pidFile?: string;
  tty: boolean;
  consoleSocket?: string;
  cwd?: string;
  env: string[];
  user?: string;
  noNewPrivileges?: boolean;
  preserveFds?: number;
  /** `--cap`: capabilities added to every set of the process, as runc adds them. */
  caps?: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A signal by name (KILL, SIGKILL) or number, as `runc kill` takes it. */
export function parseSignal(text: string | undefined): number {
  const value = text ?? 'SIGTERM';
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n > 0 && n <= 64) return n;
  } else {
    const name = value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`;
    const n = (osConstants.signals as Record<string, number>)[name];
    if (n !== undefined) return n;
  }
  throw new RuntimeError(`unknown signal "${value}"`);
}

/** Writes a pid file the way runc does: whole or not at all. */
function writePidFile(file: string, pid: number): void {
  writeWhole(file, String(pid), { temporary: path.join(path.dirname(file), `.${path.basename(file)}`) });
}

/** systemd's "slice:prefix:name" as the cgroupfs path systemd would give it. */
function systemdPath(cgroupsPath: string | undefined, id: string): string {
  const [slice = 'system.slice', prefix = 'tsvmm', name = id] = (cgroupsPath ?? '').split(':');
  if ((cgroupsPath ?? '').split(':').length !== 3 && cgroupsPath) throw new RuntimeError(`cgroupsPath "${cgroupsPath}" is not slice:prefix:name, as --systemd-cgroup needs`);
  return `/${slice || 'system.slice'}/${prefix}-${name}.scope`;
}

function fromContainerError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (isTsvmmError(error) && !(error instanceof RuntimeError)) throw new RuntimeError(error.message, { cause: error });
    throw error;
  }
}

/** runc's rule: a process with a terminal needs --console-socket (its pty master goes there), and only such a process takes one. */
function checkConsole(terminal: boolean | undefined, consoleSocket: string | undefined): void {
  if (terminal && !consoleSocket) throw new RuntimeError('cannot allocate tty if runc will detach without setting console socket');
  if (!terminal && consoleSocket) throw new RuntimeError('cannot use console socket if runc will not detach or allocate tty');
}

/** The exit status of an attached process, as a shell gives it: 128 + N when signal N killed it. */
function exitStatus(exit: LaunchEnd['exit'], helperCode: number | null): number {
  if (exit?.signal !== undefined) return 128 + exit.signal;
  return exit?.code ?? helperCode ?? 1;
}

function helperFailure(message: HelperMessage['error'] | undefined, fallback: string, what = 'container init'): RuntimeError {
  return new RuntimeError(message ? `${what} failed: ${message.message}` : fallback);
}

export class Runtime {
  readonly store: StateStore;
  readonly log: Log;
  #layout: CgroupLayout | undefined;

  constructor(readonly options: RuntimeOptions) {
    this.store = new StateStore(options.root);
    this.log = options.log;
    this.#layout = options.cgroups;
  }

  /** The host's cgroup hierarchies, found once per runtime: they do not move under us. */
  cgroupLayout(): CgroupLayout {
    const caller = this.options.caller;
    return this.#layout ??= fromContainerError(() => detectCgroups(caller ? hostCgroupSources(caller.pid, caller.env.TSVMM_CGROUP) : undefined));
  }

  cgroup(record: ContainerRecord): ContainerCgroup {
    return openCgroup(this.cgroupLayout(), record.cgroup);
  }

  status(record: ContainerRecord): Status {
    if (!initAlive(record)) return 'stopped';
    if (existsSync(this.store.fifo(record.id))) return 'created';
    return this.cgroup(record).frozen() ? 'paused' : 'running';
  }

  load(id: string): { record: ContainerRecord; status: Status } {
    const record = this.store.load(id);
    return { record, status: this.status(record) };
  }

  #spec(bundle: string): ContainerSpec {
    return fromContainerError(() => loadBundle(bundle));
  }

  /**
   * The one way a container comes to be, for tsvmm-runc's `create`/`run` and for tsvmm's own
   * containers (src/container/container.ts): claim <root>/<id>, make its cgroups, write the
   * plan, start the helper, record the init's pid in state.json, give the host its turn
   * (`beforeStart`: hooks, the network) while the init waits, and report how it went. A launch
   * that throws has left nothing behind; once it returns, `discard` undoes it.
   */
  launch(request: LaunchRequest): Launch {
    const { id, spec } = request;
    this.store.claim(id);
    const record: ContainerRecord = {
      id, pid: 0, startTime: '', bundle: request.bundle, rootfs: spec.root.path, created: new Date().toISOString(),
      owner: '', annotations: spec.annotations ?? {}, cgroup: request.cgroup, cgroupDirs: [], spec,
    };
    let cgroup: ContainerCgroup | undefined;
    let helper: Helper;
    try {
      cgroup = createCgroup(this.cgroupLayout(), request.cgroup);
      record.cgroupDirs = [...new Set(Object.values(cgroup.paths))];
      const inContainerHooks = (spec.hooks?.createContainer.length ?? 0) > 0;
      const plan = buildPlan(spec, {
        // The helper's parent: the front end, for the helper it forked.
        supervisor: this.options.helper?.forked?.parent ?? process.pid, cgroups: cgroup.plan, rootfs: request.rootfs, prepare: request.prepare,
        waitForHost: request.beforeStart !== undefined || inContainerHooks, terminal: request.terminal,
        runtime: request.runtime, preserveFds: request.preserveFds,
      });
      const end: LaunchEnd = { started: false, code: null, signal: null };
      helper = startHelper({ init: plan }, (message) => {
        if (message.pid !== undefined) {
          record.pid = message.pid;
          record.startTime = processStat(message.pid)?.startTime ?? '';
          this.store.save(record);
          request.onPid?.(message.pid);
          if (plan.waitForHost) {
            // The init exists in its namespaces and cgroups, and waits for "go" (with the state its createContainer hooks read).
            Promise.resolve().then(() => request.beforeStart?.(record)).then(() => helper.go(inContainerHooks ? JSON.stringify(ociState(record, 'creating')) : ''), (error: unknown) => {
              end.hostError ??= error;
              helper.kill('SIGKILL');
            });
          }
        } else if (message.ready || message.running) {
          if (!end.started) {
            end.started = true;
            request.onStarted?.(record);
          }
        } else if (message.error) {
          end.failure ??= message.error;
        } else if (message.exit) {
          end.exit = message.exit;
        }
      }, { stdio: request.stdio, preserveFds: request.preserveFds, ...this.options.helper });
      const ended = helper.closed.then(({ code, signal, error, thrown }) => {
        end.code = code;
        end.signal = signal;
        if (thrown !== undefined) end.hostError ??= thrown;
        if (error) end.failure ??= { step: 'helper', message: `cannot run the container helper: ${error.message}`, errno: 0 };
        return end;
      });
      return { record, cgroup, helper, ended };
    } catch (error) {
      this.discardNow(record, cgroup);
      throw error;
    }
  }

  /**
   * Makes `id` free again if what holds it is dead: a container whose supervisor was killed
   * before it could delete it (tsvmm's containers reuse their names), or a create that died
   * before it wrote its state. A live one stays, and the launch that follows refuses the id.
   */
  clearStale(id: string): void {
    if (!existsSync(this.store.dir(id))) return;
    let record: ContainerRecord;
    try {
      record = this.store.load(id);
    } catch {
      this.store.remove(id);
      return;
    }
    if (!initAlive(record)) this.discardNow(record, this.cgroup(record));
  }

  /** Undoes a launch that went wrong or has ended: kills the init if it lives, removes the cgroups and the state. */
  async discard(record: ContainerRecord, cgroup: ContainerCgroup | undefined): Promise<void> {
    this.#killInit(record);
    await cgroup?.remove().catch(() => { /* left for the next container of this name, which removes it */ });
    this.store.remove(record.id);
  }

  /** discard, synchronously (for a process 'exit' handler): a cgroup whose processes are still dying stays. */
  discardNow(record: ContainerRecord, cgroup: ContainerCgroup | undefined): void {
    this.#killInit(record);
    cgroup?.removeNow();
    this.store.remove(record.id);
  }

  #killInit(record: ContainerRecord): void {
    if (record.pid && initAlive(record)) {
      try {
        process.kill(record.pid, 'SIGKILL');
      } catch { /* gone */ }
    }
  }

  /**
   * `create` (detach) leaves the init waiting on exec.fifo and returns; `run` (attached) starts
   * it at once and returns the exit status once it ends.
   */
  async create(id: string, options: CreateOptions, mode: 'create' | 'run' = 'create'): Promise<number> {
    checkId(id);
    const bundle = path.resolve(options.bundle);
    const spec = this.#spec(bundle);
    checkConsole(spec.process.terminal, options.consoleSocket);
    // createContainer hooks are the init's, in the container's namespaces (LaunchRequest).
    const early = ['prestart', 'createRuntime'] as const;
    const hooked = early.some((kind) => (spec.hooks?.[kind].length ?? 0) > 0);
    const waitForHost = hooked || (spec.hooks?.createContainer.length ?? 0) > 0;
    // Decided before anything is done, so that the cold create that follows finds nothing of this one.
    if (this.options.helper?.spawn === false && !forkedHelperFits({ waitForHost }, { preserveFds: options.preserveFds })) {
      throw new ColdNeeded('hooks or --preserve-fds need a helper spawned by the runtime');
    }
    const { record, cgroup, helper, ended } = fromContainerError(() => this.launch({
      id, spec, bundle, rootfs: spec.root.path, prepare: [], terminal: specTerminal(spec), preserveFds: options.preserveFds,
      cgroup: {
        name: id, dirName: id, resources: spec.resources, deviceRules: spec.deviceRules,
        cgroupsPath: this.options.systemdCgroup ? systemdPath(spec.cgroupsPath, id) : spec.cgroupsPath,
      },
      runtime: { fifo: mode === 'create' ? this.store.fifo(id) : '', consoleSocket: options.consoleSocket, detach: mode === 'create' },
      // The init exists in its namespaces and waits: what Docker's networking hook needs.
      beforeStart: hooked ? (created) => { for (const kind of early) runHooksOrFail(spec.hooks, kind, ociState(created, 'creating')); } : undefined,
      onStarted: (started) => {
        this.store.save(started);
        if (options.pidFile) writePidFile(options.pidFile, started.pid);
        if (mode === 'run') runHooksWarn(spec.hooks, 'poststart', ociState(started, 'running'), (m) => this.log.warn(m));
      },
    }));
    try {
      if (mode === 'run') {
        // Signals for `runc run` are meant for the container (the helper passes them on).
        const onSignal = (signal: NodeJS.Signals) => helper.kill(signal);
        for (const signal of ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(signal, onSignal);
        process.on('SIGINT', () => { /* the terminal sent it to the container too */ });
      }
      const end = await ended;
      if (end.hostError) throw end.hostError;
      // A createContainer hook's failure is worded as the runtime's own hooks' are.
      if (end.failure?.message.startsWith('error running ')) throw new RuntimeError(end.failure.message);
      if (!end.started) throw helperFailure(end.failure, `container init ended before it was ready (exit status ${end.code})`);
      if (mode === 'create') return 0;
      // run: the container has ended; it goes as `delete` would take it.
      this.#poststop(record);
      await this.discard(record, cgroup);
      return exitStatus(end.exit, end.code);
    } catch (error) {
      // Nothing is left behind by a create that failed.
      await this.discard(record, cgroup);
      throw error;
    }
  }

  /** poststop hooks; the caller removes the cgroup and the state. */
  #poststop(record: ContainerRecord): void {
    runHooksWarn(record.spec.hooks, 'poststop', ociState(record, 'stopped'), (m) => this.log.warn(m));
  }

  /** One startContainer hook, run by the helper's exec mode inside the waiting container; undefined if it succeeded. */
  async #hookInContainer(record: ContainerRecord, index: number, hook: Hook): Promise<string | undefined> {
    const what = `startContainer hook #${index} (${hook.path})`;
    const hookProcess = { ...record.spec.process, args: [hook.path, ...hook.args.slice(1)], env: hook.env, cwd: '/', terminal: false };
    const plan = buildExecPlan({ ...record.spec, process: hookProcess }, record.pid, this.cgroup(record).plan, { detach: false });
    let failure: HelperMessage['error'];
    let exit: HelperMessage['exit'];
    const helper = startHelper({ exec: plan }, (message) => {
      if (message.error) failure ??= message.error;
      else if (message.exit) exit = message.exit;
    }, { stdin: JSON.stringify(ociState(record, 'created')) });
    const timer = hook.timeout === undefined ? undefined : setTimeout(() => helper.kill('SIGKILL'), hook.timeout * 1000);
    await helper.closed;
    clearTimeout(timer);
    if (failure) return `${what} could not run: ${failure.message}`;
    if (exit?.code === 0) return undefined;
    if (!exit) return hook.timeout === undefined ? `${what} ended without a status` : `${what} did not finish within ${hook.timeout} s and was killed`;
    return exit.signal !== undefined ? `${what} was killed by signal ${exit.signal}` : `${what} exited with status ${exit.code}`;
  }

  async start(id: string): Promise<void> {
    const { record, status } = this.load(id);
    checkTransition('start', status, id);
    // startContainer hooks run in the container (its namespaces and cgroups, as its process's user),
    // before the command.
    for (const [i, hook] of (record.spec.hooks?.startContainer ?? []).entries()) {
      const failure = await this.#hookInContainer(record, i, hook);
      if (failure) throw new RuntimeError(`error running ${failure}`);
    }
    const fifo = this.store.fifo(id);
    let fd: number;
    try {
      fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      throw new RuntimeError('cannot start an already running container');
    }
    try {
      // The init blocks opening the other end; once it has, it writes one byte and execs.
      const byte = Buffer.alloc(1);
      const took = () => {
        try {
          return readSync(fd, byte) === 1;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
          return false;
        }
      };
      for (let i = 0; ; i++) {
        if (took()) break;
        // A quick command may have taken its cue and ended between that read and this look: its byte is there.
        if (!initAlive(record) && !took()) throw new RuntimeError('cannot start a container that has stopped');
        sleepSync(i < 100 ? 1 : 10);
      }
    } finally {
      closeSync(fd);
    }
    try {
      unlinkSync(fifo);
    } catch { /* another start raced us; the init went once */ }
    runHooksWarn(record.spec.hooks, 'poststart', ociState(record, 'running'), (m) => this.log.warn(m));
  }

  state(id: string): string {
    const { record, status } = this.load(id);
    return ociStateText(record, status);
  }

  async kill(id: string, signal: string | undefined, all: boolean): Promise<void> {
    const { record, status } = this.load(id);
    checkTransition('kill', status, id);
    const sig = parseSignal(signal);
    const cgroup = this.cgroup(record);
    const pids = all ? cgroup.processes() : [record.pid];
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ESRCH') {
          if (!all) throw new RuntimeError('container not running');
        } else {
          throw new RuntimeError(`cannot send signal ${sig} to ${pid}: ${(error as NodeJS.ErrnoException).code}`);
        }
      }
    }
    // A frozen process takes its SIGKILL only once thawed (runc thaws as well).
    if (status === 'paused' && sig === osConstants.signals.SIGKILL) await cgroup.thaw().catch(() => {});
  }

  async delete(id: string, force: boolean): Promise<void> {
    let record: ContainerRecord;
    try {
      record = this.store.load(id);
    } catch (error) {
      // A create that died half-way may have left its directory; runc removes it too.
      this.store.remove(checkId(id));
      if (force) return;
      throw error;
    }
    const status = this.status(record);
    checkTransition(force ? 'delete --force' : 'delete', status, id);
    const cgroup = this.cgroup(record);
    if (status !== 'stopped') {
      for (const pid of [record.pid, ...cgroup.processes()]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch { /* gone */ }
      }
      if (status === 'paused') await cgroup.thaw().catch(() => {});
      for (let i = 0; initAlive(record); i++) {
        if (i > 1000) throw new RuntimeError(`container ${id}: its init (pid ${record.pid}) did not die within 10 s of SIGKILL`);
        await sleep(10);
      }
    }
    this.#poststop(record);
    await fromContainerError(() => cgroup.remove());
    this.store.remove(id);
  }

  async pause(id: string): Promise<void> {
    const { record, status } = this.load(id);
    checkTransition('pause', status, id);
    await fromContainerError(() => this.cgroup(record).freeze());
  }

  async resume(id: string): Promise<void> {
    const { record, status } = this.load(id);
    checkTransition('resume', status, id);
    await fromContainerError(() => this.cgroup(record).thaw());
  }

  /** `update --resources FILE|-`: new limits, as containerd and the CRI plugin set them on a live container. */
  update(id: string, text: string, source: string): void {
    const { record, status } = this.load(id);
    if (status === 'stopped') throw new RuntimeError('container not running');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new RuntimeError(`--resources ${source}: not valid JSON (${(error as Error).message})`);
    }
    this.updateResources(id, fromContainerError(() => resourcesFromJson(json, source)), { record, status });
  }

  /** New limits on a live container's cgroups, kept in its state; returns its cgroup. */
  updateResources(id: string, resources: ResourceLimits, loaded = this.load(id)): ContainerCgroup {
    const { record, status } = loaded;
    if (status === 'stopped') throw new RuntimeError('container not running');
    const cgroup = this.cgroup(record);
    fromContainerError(() => cgroup.apply(resources));
    record.spec.resources = { ...record.spec.resources, ...resources };
    this.store.save(record);
    return cgroup;
  }

  ps(id: string, format: string): string {
    const { record } = this.load(id);
    const pids = this.cgroup(record).processes();
    if (format === 'json') return JSON.stringify(pids);
    if (format !== 'table') throw new RuntimeError(`invalid format option "${format}": table or json`);
    const lines = childProcess().execFileSync('ps', ['-ef'], { encoding: 'utf8' }).split('\n');
    const header = lines[0] ?? '';
    const pidColumn = header.trim().split(/\s+/).indexOf('PID');
    return [header, ...lines.slice(1).filter((line) => pids.includes(Number(line.trim().split(/\s+/)[pidColumn])))].join('\n');
  }

  list(format: string, quiet: boolean): string {
    const states = this.store.ids().map((id) => {
      try {
        const { record, status } = this.load(id);
        return ociState(record, status);
      } catch {
        return undefined;
      }
    }).filter((s) => s !== undefined);
    if (quiet) return states.map((s) => s.id).join('\n');
    if (format === 'json') return JSON.stringify(states);
    if (format !== 'table') throw new RuntimeError(`invalid format option "${format}": table or json`);
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created ?? '', s.owner ?? ''])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('')).join('\n');
  }

  /** One `events` record of runc's: the container's cgroup counters now. */
  stats(id: string): string {
    const { record, status } = this.load(id);
    if (status === 'stopped') throw new RuntimeError('container not running');
    const cgroup = this.cgroup(record);
    const limits = cgroup.read();
    let memory: { usage: number; max: number } | undefined;
    try {
      const used = cgroupMemory(cgroup.paths);
      memory = { usage: used.current, max: used.peak };
    } catch { /* no memory cgroup */ }
    return JSON.stringify({
      type: 'stats', id,
      data: {
        cpu: { usage: { total: cgroup.cpuTimeUs() * 1000 } },
        memory: { usage: { ...memory, ...(limits.memory === null ? {} : { limit: limits.memory }) }, oom_kill: cgroup.oomKills() },
        pids: { current: cgroup.processes().length, ...(limits.pids === null ? {} : { limit: limits.pids }) },
      },
    });
  }

  /**
   * `events`: a stats record every `intervalMs` (and an "oom" record when the OOM killer has
   * struck since the last one) until the container stops; with `once` (--stats), one record.
   */
  async events(id: string, intervalMs: number, once: boolean, write: (line: string) => void): Promise<void> {
    let ooms = this.cgroup(this.load(id).record).oomKills();
    for (;;) {
      const { record, status } = this.load(id);
      if (status === 'stopped') {
        if (once) throw new RuntimeError('container not running');
        return;
      }
      const kills = this.cgroup(record).oomKills();
      if (kills > ooms) write(JSON.stringify({ type: 'oom', id }));
      ooms = kills;
      write(this.stats(id));
      if (once) return;
      await sleep(intervalMs);
    }
  }

  async exec(id: string, options: ExecOptions): Promise<number> {
    const { record, status } = this.load(id);
    checkTransition('exec', status, id);
    let processSpec: ContainerSpec['process'];
    if (options.processFile) {
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(options.processFile, 'utf8'));
      } catch (error) {
        throw new RuntimeError(`--process ${options.processFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      processSpec = fromContainerError(() => processFromJson(json, options.processFile!));
    } else {
      if (options.args.length === 0) throw new RuntimeError('exec: say what to run: exec [options] <container-id> <command> [args...], or --process FILE');
      processSpec = { ...record.spec.process, args: options.args, terminal: options.tty };
    }
    if (options.cwd !== undefined) processSpec.cwd = options.cwd;
    if (options.env.length) {
      const names = new Set(options.env.map((e) => e.split('=')[0]));
      processSpec.env = [...processSpec.env.filter((e) => !names.has(e.split('=')[0])), ...options.env];
    }
    if (options.user !== undefined) {
      const match = /^(\d+)(?::(\d+))?$/.exec(options.user);
      if (!match) throw new RuntimeError(`--user ${options.user}: give UID[:GID] as numbers`);
      processSpec.user = { ...processSpec.user, uid: Number(match[1]), gid: match[2] === undefined ? processSpec.user.gid : Number(match[2]) };
    }
    if (options.noNewPrivileges) processSpec.noNewPrivileges = true;
    if (options.caps?.length) {
      // Ambient needs inheritable too; runc adds to both (and the kernel drops what is not permitted).
      const add = (set: readonly string[]) => [...new Set([...set, ...options.caps!.map((c) => c.toUpperCase())])];
      const c = processSpec.capabilities;
      processSpec.capabilities = { bounding: add(c.bounding), effective: add(c.effective), permitted: add(c.permitted), inheritable: add(c.inheritable), ambient: add(c.ambient) };
    }
    checkConsole(processSpec.terminal, options.consoleSocket);

    const plan = buildExecPlan({ ...record.spec, process: processSpec }, record.pid, this.cgroup(record).plan, { consoleSocket: options.consoleSocket, detach: options.detach, preserveFds: options.preserveFds });
    let failure: HelperMessage['error'];
    let exit: HelperMessage['exit'];
    let started = false;
    const helper = startHelper({ exec: plan }, (message) => {
      if (message.running) {
        started = true;
      } else if (message.pid !== undefined) {
        if (options.pidFile) writePidFile(options.pidFile, message.pid);
      } else if (message.error) {
        failure ??= message.error;
      } else if (message.exit) {
        exit = message.exit;
      }
    }, { preserveFds: options.preserveFds });
    if (!options.detach) {
      const forward = (signal: NodeJS.Signals) => helper.kill(signal);
      for (const signal of ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'] as const) process.on(signal, forward);
    }
    const { code } = await helper.closed;
    if (!started) {
      if (options.pidFile && existsSync(options.pidFile)) unlinkSync(options.pidFile);
      throw helperFailure(failure, `exec ended before the process ran (exit status ${code})`, 'exec');
    }
    if (options.detach) return 0;
    return exitStatus(exit, code);
  }
}

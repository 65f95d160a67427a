// Each running instance answers on its own unix socket (owner-only): status, pause, resume,
// stop, snapshot, and `console`, which turns the connection into the instance's console.

import { chmodSync } from 'node:fs';
import { removeFile } from '../meta/remove-file.js';
import net from 'node:net';
import { isTsvmmError, TsvmmError } from '../errors.js';
import { LineReader, type ControlRequest, type ControlResponse, type InstanceStatus, type LimitChanges, type TerminalSize } from './protocol.js';
import { ensureRuntimeDir, removeInstance, runtimeDirKey, socketPath, writeOutcome, writeRecord, type InstanceRecord } from './runtime-dir.js';

/** What the server needs of a VM or a container. */
export interface ControlledInstance {
  status(): InstanceStatus;
  pause(): Promise<void>;
  resume(): void | Promise<void>;
  /** `timeoutMs`: a container's time from SIGTERM to SIGKILL (VMs stop at once). */
  stop(timeoutMs?: number): Promise<unknown>;
  snapshot?(path: string, options: { diff: boolean; onProgress(done: number, total: number): void }): Promise<void>;
  /** Changes limits in place (containers); resolves with the new status. */
  update?(limits: LimitChanges): InstanceStatus | Promise<InstanceStatus>;
  console?: {
    /** Recent output, replayed to a console that attaches. */
    backlog(): Buffer;
    /** Calls `onChunk` with new output until the returned function is called. */
    subscribe(onChunk: (chunk: Buffer) => void): () => void;
    write(data: Buffer): void;
    /**
     * Whether the console is a terminal (a container's pty): echo, line editing and Ctrl-C as
     * SIGINT happen inside, so a client sends keys as they are. Otherwise it is a pipe (a
     * container without a pty) or a serial line (a VM: the guest decides).
     */
    terminal?: boolean;
    /** Tells the console's terminal its new size (the workload gets SIGWINCH). */
    resize?(size: TerminalSize): void;
  };
}

const BACKLOG = 64 * 1024;

/** A name taken for an instance (ControlServer.claim): serve it once, or release it. */
export interface NameClaim {
  /** Answers for the instance on its control socket and writes its record; a failure releases the name. */
  serve(record: InstanceRecord, instance: ControlledInstance): Promise<ControlServer>;
  /** Gives the name back, unless it is served (then the server's close does). */
  release(): void;
}

export class ControlServer {
  readonly path: string;
  readonly #server: net.Server;
  readonly #name: string;
  readonly #kind: InstanceRecord['kind'];
  readonly #connections = new Set<net.Socket>();
  /**
   * pause, resume, snapshot and update run one at a time, in the order they arrived, whichever
   * client asked: each answer (a status, a snapshot's path) is taken before the next operation
   * starts, so it is still true when the client reads it. status and stop do not wait their turn.
   */
  #queue: Promise<void> = Promise.resolve();

  private constructor(server: net.Server, path: string, record: InstanceRecord) {
    this.#server = server;
    this.path = path;
    this.#name = record.name;
    this.#kind = record.kind;
  }

  /** Starts answering for `record.name`; refuses a name another live instance holds. */
  static async listen(record: InstanceRecord, instance: ControlledInstance): Promise<ControlServer> {
    return (await ControlServer.claim(record.name)).serve(record, instance);
  }

  /**
   * Takes `name` for an instance about to start, refusing one another live instance holds; its
   * `serve` then answers for it. Apart, so that what can wait (the socket, the record) is done
   * while the instance starts: a container's helper sets it up meanwhile.
   */
  static async claim(name: string): Promise<NameClaim> {
    const dir = ensureRuntimeDir();
    const path = socketPath(name, dir);
    // Whoever holds the name's lock owns the name; checking the socket alone is a race (two
    // starts both find it silent, and the second removes the first one's socket).
    const lock = await claimName(dir, name).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EADDRINUSE' ? new TsvmmError('NAME_IN_USE', `an instance named "${name}" is already running`) : error;
    });
    // Every live instance holds its name's lock, so a socket found here is one left behind by a
    // VMM that died: no need to ask it (a probe's connection is also a few ms of start-up).
    removeFile(path);
    removeFile(path.replace(/\.sock$/, '.outcome')); // an earlier instance's of this name
    let served = false;
    return {
      serve: async (record, instance) => {
        if (served || record.name !== name) throw new Error(`a claim on "${name}" serves it once`);
        served = true;
        return ControlServer.#serveClaimed(dir, path, lock, record, instance);
      },
      release: () => { if (!served) lock.close(); },
    };
  }

  static async #serveClaimed(dir: string, path: string, lock: net.Server, record: InstanceRecord, instance: ControlledInstance): Promise<ControlServer> {
    const server = net.createServer();
    server.on('close', () => lock.close());
    const control = new ControlServer(server, path, record);
    server.on('connection', (socket) => control.#serve(socket, instance));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        lock.close();
        reject(new TsvmmError('RUNTIME_DIR',
          `cannot make the control socket ${path}: ${error.code === 'EACCES' ? 'permission denied' : error.code ?? error.message}`));
      });
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    writeRecord(record, dir);
    return control;
  }

  /**
   * Answers the operations already asked for (they fail at once on an ended instance), then stops
   * answering and removes the instance's record, leaving `outcome` (how it ended) for watchers.
   */
  async close(outcome?: string): Promise<void> {
    await this.#queue;
    for (const s of this.#connections) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (outcome !== undefined) writeOutcome({ name: this.#name, kind: this.#kind, endedAt: Date.now(), outcome });
    removeInstance(this.#name);
  }

  #serve(socket: net.Socket, instance: ControlledInstance): void {
    this.#connections.add(socket);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => socket.destroy());
    const reader = new LineReader();
    const send = (response: ControlResponse) => { if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`); };
    const onData = (chunk: Buffer) => reader.push(chunk, (line) => {
      let request: ControlRequest;
      try {
        request = JSON.parse(line) as ControlRequest;
        if (typeof request !== 'object' || request === null || typeof request.op !== 'string') throw new Error('not a request');
      } catch {
        send({ id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'not a JSON request line' } });
        return;
      }
      const id = Number.isInteger(request.id) ? request.id : 0;
      if (request.op === 'console') {
        socket.off('data', onData);
        this.#attachConsole(socket, instance, request, id, send, Buffer.from(reader.takeRest()));
        return;
      }
      this.#inTurn(request, () => this.#handle(request, instance, (progress) => send({ id, progress })))
        .then((result) => send({ id, ok: true, result: result ?? null }))
        .catch((error: unknown) => send({
          id, ok: false,
          error: isTsvmmError(error) ? { code: error.code, message: error.message } : { code: 'INTERNAL', message: (error as Error).message },
        }));
    });
    socket.on('data', onData);
  }

  #inTurn<T>(request: ControlRequest, op: () => Promise<T>): Promise<T> {
    if (request.op === 'status' || request.op === 'stop') return op();
    const result = this.#queue.then(op);
    this.#queue = result.then(() => undefined, () => undefined);
    return result;
  }

  async #handle(request: ControlRequest, instance: ControlledInstance, progress: (p: { done: number; total: number }) => void): Promise<unknown> {
    switch (request.op) {
      case 'status':
        return instance.status();
      case 'pause':
        await instance.pause();
        return instance.status();
      case 'resume':
        await instance.resume();
        return instance.status();
      case 'stop':
        // Answer first: the caller wants to know it was heard, and the process may end soon after.
        if (request.stopTimeoutMs !== undefined && !(Number.isFinite(request.stopTimeoutMs) && request.stopTimeoutMs >= 0)) {
          throw new TsvmmError('BAD_REQUEST', 'stopTimeoutMs must be 0 or more milliseconds');
        }
        setImmediate(() => { void instance.stop(request.stopTimeoutMs); });
        return { stopping: true };
      case 'snapshot':
        if (!instance.snapshot) throw new TsvmmError('UNSUPPORTED', 'this instance cannot be snapshotted');
        if (typeof request.path !== 'string' || !request.path) throw new TsvmmError('BAD_REQUEST', 'snapshot needs a path');
        await instance.snapshot(request.path, { diff: request.diff === true, onProgress: (done, total) => progress({ done, total }) });
        return { path: request.path };
      case 'update':
        if (!instance.update) throw new TsvmmError('UNSUPPORTED', 'only containers can be updated; a VM keeps the memory and vCPUs it booted with');
        if (typeof request.limits !== 'object' || request.limits === null) throw new TsvmmError('BAD_REQUEST', 'update needs limits');
        return instance.update(request.limits);
      case 'resize':
        if (!instance.console?.resize) throw new TsvmmError('UNSUPPORTED', 'this instance has no terminal to resize');
        instance.console.resize(checkSize(request.size));
        return { size: request.size };
      case 'console':
        return undefined; // handled by the caller
      default:
        throw new TsvmmError('BAD_REQUEST', `unknown operation "${String((request as { op: unknown }).op)}"`);
    }
  }

  #attachConsole(socket: net.Socket, instance: ControlledInstance, request: ControlRequest, id: number, send: (r: ControlResponse) => void, early: Buffer): void {
    const console = instance.console;
    if (!console) {
      send({ id, ok: false, error: { code: 'UNSUPPORTED', message: 'this instance has no console' } });
      return;
    }
    if (request.size !== undefined && console.resize) {
      try {
        console.resize(checkSize(request.size));
      } catch (error) {
        send({ id, ok: false, error: { code: 'BAD_REQUEST', message: (error as Error).message } });
        return;
      }
    }
    send({ id, ok: true, result: { attached: true, terminal: console.terminal === true } });
    const backlog = console.backlog();
    socket.write(backlog.subarray(Math.max(0, backlog.length - BACKLOG)));
    const unsubscribe = console.subscribe((chunk) => { if (!socket.destroyed) socket.write(chunk); });
    if (early.length) console.write(early);
    socket.on('data', (data: Buffer) => console.write(data));
    socket.on('close', unsubscribe);
  }
}

/**
 * Takes the lock on `name` in the runtime directory `dir`: an abstract unix socket (Linux),
 * which only one process can bind and which the kernel releases when its process dies, even
 * by SIGKILL, so that a crash leaves no stale lock behind.
 */
function claimName(dir: string, name: string): Promise<net.Server> {
  const lock = net.createServer();
  return new Promise((resolve, reject) => {
    lock.once('error', reject);
    lock.listen(`\0tsvmm-name-${runtimeDirKey(dir)}-${name}`, () => {
      lock.unref();
      resolve(lock);
    });
  });
}

/** A terminal size from a request: whole numbers of rows and columns, 1 to 65535. */
function checkSize(size: unknown): TerminalSize {
  const { rows, cols } = (typeof size === 'object' && size !== null ? size : {}) as Record<string, unknown>;
  const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
  if (!ok(rows) || !ok(cols)) throw new TsvmmError('BAD_REQUEST', 'a terminal size is {"rows": R, "cols": C}, each a whole number from 1 to 65535');
  return { rows, cols };
}

/** Whether something is listening on the socket at `path`. */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
}

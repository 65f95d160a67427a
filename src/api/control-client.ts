// The other end of the control socket, for the CLI, the dashboard and scripts.

import net from 'node:net';
import { TsvmmError } from '../errors.js';
import { LineReader, type ControlOp, type ControlRequest, type ControlResponse, type InstanceStatus, type LimitChanges, type TerminalSize } from './protocol.js';
import { findInstance, socketPath } from './runtime-dir.js';

export interface RequestOptions {
  path?: string;
  diff?: boolean;
  limits?: LimitChanges;
  size?: TerminalSize;
  /** stop: how long a container has between SIGTERM and SIGKILL. */
  stopTimeoutMs?: number;
  onProgress?(done: number, total: number): void;
  timeoutMs?: number;
}

function connect(name: string): Promise<net.Socket> {
  findInstance(name);
  const path = socketPath(name);
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error: NodeJS.ErrnoException) => reject(new TsvmmError('NOT_RESPONDING', `"${name}" is not answering on ${path} (${error.code})`)));
  });
}

/** Sends one request and resolves with its result; rejects with the instance's error. */
export async function request<T = unknown>(name: string, op: Exclude<ControlOp, 'console'>, options: RequestOptions = {}): Promise<T> {
  const socket = await connect(name);
  const id = 1;
  return new Promise<T>((resolve, reject) => {
    const reader = new LineReader();
    const timer = options.timeoutMs ? setTimeout(() => {
      socket.destroy();
      reject(new TsvmmError('NOT_RESPONDING', `"${name}" did not answer ${op} within ${options.timeoutMs} ms`));
    }, options.timeoutMs) : undefined;
    const done = () => { if (timer) clearTimeout(timer); socket.end(); };
    socket.on('data', (chunk) => reader.push(chunk, (line) => {
      const response = JSON.parse(line) as ControlResponse;
      if (response.id !== id) return;
      if ('progress' in response) {
        options.onProgress?.(response.progress.done, response.progress.total);
      } else if (response.ok) {
        done();
        resolve(response.result as T);
      } else {
        done();
        reject(new TsvmmError(response.error.code, response.error.message));
      }
    }));
    socket.on('close', () => reject(new TsvmmError('NOT_RESPONDING', `"${name}" closed the connection before answering ${op}`)));
    const message: ControlRequest = { id, op, path: options.path, diff: options.diff, limits: options.limits, size: options.size, stopTimeoutMs: options.stopTimeoutMs };
    socket.write(`${JSON.stringify(message)}\n`);
  });
}

export function status(name: string, timeoutMs = 2000): Promise<InstanceStatus> {
  return request<InstanceStatus>(name, 'status', { timeoutMs });
}

/** An attached console: its bytes both ways on `socket`. */
export interface ConsoleStream {
  socket: net.Socket;
  /**
   * The console is a terminal (a container's pty): send keys as they are (Enter as \r, Backspace
   * as DEL, Ctrl-C as \x03); it echoes, edits lines and turns Ctrl-C into SIGINT itself.
   * Otherwise a pipe or a serial line: whatever is on the other side decides.
   */
  terminal: boolean;
  /** Tells a terminal console its new size (a no-op for other consoles). */
  resize(size: TerminalSize): Promise<void>;
}

/**
 * Attaches to an instance's console, telling a terminal console `size` (the rows and columns
 * that show it). Several consoles may attach at once: each sees the output, all type into it.
 */
export async function openConsole(name: string, size?: TerminalSize): Promise<ConsoleStream> {
  const socket = await connect(name);
  return new Promise((resolve, reject) => {
    // The acknowledgement is one JSON line; what follows it is console bytes, kept as bytes.
    let pending = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const nl = pending.indexOf(0x0a);
      if (nl < 0) return;
      socket.off('data', onData);
      const response = JSON.parse(pending.subarray(0, nl).toString('utf8')) as ControlResponse;
      const rest = pending.subarray(nl + 1);
      if ('ok' in response && response.ok) {
        const terminal = (response.result as { terminal?: boolean } | null)?.terminal === true;
        resolve({
          socket, terminal,
          resize: async (to) => { if (terminal) await request(name, 'resize', { size: to, timeoutMs: 5000 }); },
        });
        if (rest.length) setImmediate(() => socket.emit('data', rest));
      } else {
        socket.destroy();
        reject(new TsvmmError('UNSUPPORTED', 'ok' in response && !response.ok ? response.error.message : 'unexpected answer'));
      }
    };
    socket.on('data', onData);
    socket.write(`${JSON.stringify({ id: 1, op: 'console', size } satisfies ControlRequest)}\n`);
  });
}

/** Attaches to an instance's console: resolves with a socket that carries its bytes both ways. */
export async function attachConsole(name: string): Promise<net.Socket> {
  return (await openConsole(name)).socket;
}

// The control protocol spoken on each instance's unix socket: one JSON object per line.
// A request has an id and an op; the answer repeats the id with a result or an error, and long
// operations send progress lines first. `console` turns the connection into the raw console.
// `update` changes a container's limits in place.

export type ControlOp = 'status' | 'pause' | 'resume' | 'stop' | 'snapshot' | 'console' | 'update' | 'resize';

/** A terminal's size in character cells (struct winsize). */
export interface TerminalSize {
  rows: number;
  cols: number;
}

/** update: the limits to change; those left out stay as they are. */
export interface LimitChanges {
  /** Bytes, or a size such as "128M". */
  memory?: number | string;
  cpus?: number;
  pids?: number;
}

export interface ControlRequest {
  id: number;
  op: ControlOp;
  /** snapshot: where to write it. */
  path?: string;
  /** snapshot: write only the pages dirtied since the last snapshot of this VM. */
  diff?: boolean;
  /** update: what to change. */
  limits?: LimitChanges;
  /** stop: a container's time from SIGTERM to SIGKILL (default: its own); stops compose, the shortest wins. */
  stopTimeoutMs?: number;
  /** console, resize: the size of the terminal showing the console (for an instance with a pty). */
  size?: TerminalSize;
}

export interface InstanceStatus {
  name: string;
  kind: 'vm' | 'container';
  /** 'stopping': asked to stop, not yet ended (a container waits up to its stop timeout). */
  state: 'running' | 'paused' | 'stopping' | 'exited' | 'created';
  cpus: number;
  /** The memory it may use: a VM's RAM, a container's limit (or the host's memory without one). */
  memory: number;
  /**
   * Host memory it uses now (host-memory.ts): a VM's whole VMM process as PSS, a container's memory
   * cgroup charge. Absent when it cannot be read.
   */
  memoryUsed?: { bytes: number; how: 'PSS' | 'cgroup' };
  uptimeMs: number;
  /** Cumulative counters (VM exits; for containers whatever applies) and CPU time used, in µs. */
  exits: number;
  cpuTimeUs: number;
  /**
   * VMs: what the guest did that the VMM refused and went on: accesses to addresses no device
   * claims, and device faults (a device model that threw, a virtqueue it broke).
   */
  guest?: { unclaimed: number; faults: number };
  /** Containers: the host pid of the container's init (its pid 1), once it exists. */
  pid?: number;
  /** Containers: its address, with a network of its own (--net veth). */
  address?: string;
  /** Containers: the limits in force (null: none). */
  limits?: { memory: number | null; cpus: number | null; pids: number | null };
}

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } }
  | { id: number; progress: { done: number; total: number } };

/** Splits a byte stream into lines, for both ends. */
export class LineReader {
  #buffer = '';

  push(chunk: Buffer | string, onLine: (line: string) => void): void {
    this.#buffer += chunk.toString();
    for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
    // A client that never sends a newline cannot make us buffer without end.
    if (this.#buffer.length > 1 << 20) this.#buffer = '';
  }

  /** What arrived after the last complete line (the first console bytes after a `console` request). */
  takeRest(): string {
    const rest = this.#buffer;
    this.#buffer = '';
    return rest;
  }
}

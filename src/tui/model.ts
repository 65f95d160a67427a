// The dashboard's data: every VM and container in the runtime directory, polled once a second
// through the control API, with rates computed from the counters' deltas. No terminal here, so
// unit tests drive it with a fake source and a fake clock.

import type { InstanceStatus } from '../api/protocol.js';
import type { InstanceRecord } from '../api/runtime-dir.js';

/** Where instances come from: the runtime directory and the control sockets, or a fake. */
export interface InstanceSource {
  list(): InstanceRecord[];
  status(name: string): Promise<InstanceStatus>;
}

/** How many samples the charts keep. */
export const HISTORY = 60;

export interface Row {
  name: string;
  kind: 'vm' | 'container';
  /** The instance's own state, or 'unresponsive' when it did not answer. */
  state: InstanceStatus['state'] | 'unresponsive';
  cpus: number;
  memory: number;
  uptimeMs: number;
  /** CPU time used per wall-clock time, in percent of one CPU (so up to cpus × 100); null until two samples. */
  cpuPercent: number | null;
  /** Exits per second (VMs); null until two samples. */
  exitsPerSecond: number | null;
  exits: number | null;
  pid: number;
  image: string;
  /** The last HISTORY rates, oldest first, for the charts. */
  cpuHistory: number[];
  exitsHistory: number[];
}

export interface Sample {
  /** Wall-clock ms when the answer came. */
  at: number;
  exits: number;
  cpuTimeUs: number;
}

export interface Rates {
  cpuPercent: number;
  exitsPerSecond: number;
}

/**
 * Rates between two samples of one instance: null when there is no earlier sample, no time passed,
 * or a counter went backwards (a restored VM with the same name starts counting again).
 */
export function rates(previous: Sample | undefined, current: Sample): Rates | null {
  if (!previous) return null;
  const ms = current.at - previous.at;
  if (ms <= 0) return null;
  const exits = current.exits - previous.exits;
  const cpuUs = current.cpuTimeUs - previous.cpuTimeUs;
  if (exits < 0 || cpuUs < 0) return null;
  return { cpuPercent: (cpuUs / (ms * 1000)) * 100, exitsPerSecond: exits / (ms / 1000) };
}

function pushHistory(history: number[], value: number): number[] {
  const next = [...history, value];
  return next.length > HISTORY ? next.slice(next.length - HISTORY) : next;
}

export class DashboardModel {
  #rows: Row[] = [];
  readonly #samples = new Map<string, Sample>();
  readonly #histories = new Map<string, { cpu: number[]; exits: number[] }>();
  readonly #listeners = new Set<(rows: Row[]) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #polling = false;

  constructor(private readonly source: InstanceSource, private readonly now: () => number = Date.now) {}

  get rows(): Row[] {
    return this.#rows;
  }

  onChange(listener: (rows: Row[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** One round: list the instances, ask each for its status, compute rates. */
  async poll(): Promise<Row[]> {
    const records = this.source.list();
    const rows = await Promise.all(records.map(async (record): Promise<Row> => {
      const history = this.#histories.get(record.name) ?? { cpu: [], exits: [] };
      let live: InstanceStatus | undefined;
      try {
        live = await this.source.status(record.name);
      } catch {
        live = undefined;
      }
      const base = {
        name: record.name, kind: record.kind, pid: record.pid, image: record.image,
        cpus: live?.cpus ?? record.cpus, memory: live?.memory ?? record.memory,
        uptimeMs: live?.uptimeMs ?? this.now() - record.startedAt,
      };
      if (!live) {
        return { ...base, state: 'unresponsive', cpuPercent: null, exitsPerSecond: null, exits: null, cpuHistory: history.cpu, exitsHistory: history.exits };
      }
      const sample: Sample = { at: this.now(), exits: live.exits, cpuTimeUs: live.cpuTimeUs };
      const r = rates(this.#samples.get(record.name), sample);
      this.#samples.set(record.name, sample);
      if (r) {
        history.cpu = pushHistory(history.cpu, r.cpuPercent);
        history.exits = pushHistory(history.exits, r.exitsPerSecond);
      }
      this.#histories.set(record.name, history);
      return {
        ...base, state: live.state, exits: live.exits,
        cpuPercent: r?.cpuPercent ?? null, exitsPerSecond: r?.exitsPerSecond ?? null,
        cpuHistory: history.cpu, exitsHistory: history.exits,
      };
    }));
    // Forget instances that are gone, so a new one with the same name starts afresh.
    const names = new Set(records.map((r) => r.name));
    for (const name of [...this.#samples.keys()]) if (!names.has(name)) this.#samples.delete(name);
    for (const name of [...this.#histories.keys()]) if (!names.has(name)) this.#histories.delete(name);
    this.#rows = rows;
    for (const listener of this.#listeners) listener(rows);
    return rows;
  }

  /** Polls now and then every intervalMs; a round still under way is not overlapped. */
  start(intervalMs = 1000): void {
    const tick = () => {
      if (this.#polling) return;
      this.#polling = true;
      void this.poll().finally(() => { this.#polling = false; });
    };
    tick();
    this.#timer = setInterval(tick, intervalMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

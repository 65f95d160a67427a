// The dashboard's data: every VM and container in the runtime directory, polled once a second
// through the control API, with rates computed from the counters' deltas. No terminal here, so
// unit tests drive it with a fake source and a fake clock.

import type { InstanceStatus } from '../api/protocol.js';
import type { InstanceOutcome, InstanceRecord } from '../api/runtime-dir.js';

/** Where instances come from: the runtime directory and the control sockets, or a fake. */
export interface InstanceSource {
  list(): InstanceRecord[];
  status(name: string): Promise<InstanceStatus>;
  /** How an instance that left the list ended, if it said. */
  outcome?(name: string): InstanceOutcome | undefined;
}

/** How long an instance that ended stays in the table, with its outcome. */
export const ENDED_KEEP_MS = 60_000;

/** How many samples the charts keep. */
export const HISTORY = 60;

export interface Row {
  name: string;
  kind: 'vm' | 'container';
  /**
   * The instance's own state; 'unresponsive' when it did not answer; 'ended' once it left the
   * list (kept ENDED_KEEP_MS, with `outcome`).
   */
  state: InstanceStatus['state'] | 'unresponsive' | 'ended';
  cpus: number;
  /** The memory it may use (a VM's RAM, a container's limit or the host's memory). */
  memory: number;
  /** A container without a memory limit (`memory` is then the host's). */
  unlimited?: boolean;
  /** Host memory it uses (PSS of a VM's process, a container's cgroup charge); null if unknown. */
  memoryUsed: number | null;
  memoryHow: 'PSS' | 'cgroup' | null;
  /** How it ended, once it has ('ended' rows). */
  outcome?: string;
  endedAt?: number;
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
  memoryHistory: number[];
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

type Histories = { cpu: number[]; exits: number[]; memory: number[] };

export class DashboardModel {
  #rows: Row[] = [];
  readonly #samples = new Map<string, Sample>();
  readonly #histories = new Map<string, Histories>();
  /** Instances that left the list, shown as ended until ENDED_KEEP_MS after. */
  readonly #ended = new Map<string, Row>();
  /** Instances asked to stop here: shown as stopping while they still answer as running. */
  readonly #stopping = new Set<string>();
  readonly #listeners = new Set<(rows: Row[]) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #polling = false;

  constructor(private readonly source: InstanceSource, private readonly now: () => number = Date.now) {}

  get rows(): Row[] {
    return this.#rows;
  }

  /** Marks an instance as asked to stop, until it is gone. */
  stopping(name: string): void {
    this.#stopping.add(name);
    this.#rows = this.#rows.map((r) => (r.name === name && r.state !== 'ended' ? { ...r, state: 'stopping' } : r));
    for (const listener of this.#listeners) listener(this.#rows);
  }

  onChange(listener: (rows: Row[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** One round: list the instances, ask each for its status, compute rates. */
  async poll(): Promise<Row[]> {
    const records = this.source.list();
    const rows = await Promise.all(records.map(async (record): Promise<Row> => {
      const history = this.#histories.get(record.name) ?? { cpu: [], exits: [], memory: [] };
      let live: InstanceStatus | undefined;
      try {
        live = await this.source.status(record.name);
      } catch {
        live = undefined;
      }
      const base = {
        name: record.name, kind: record.kind, pid: record.pid, image: record.image,
        cpus: live?.cpus ?? record.cpus, memory: live?.memory ?? record.memory,
        memoryUsed: live?.memoryUsed?.bytes ?? null, memoryHow: live?.memoryUsed?.how ?? null,
        ...(live?.limits?.memory === null ? { unlimited: true } : {}),
        uptimeMs: live?.uptimeMs ?? this.now() - record.startedAt,
      };
      const histories = { cpuHistory: history.cpu, exitsHistory: history.exits, memoryHistory: history.memory };
      if (!live) return { ...base, state: 'unresponsive', cpuPercent: null, exitsPerSecond: null, exits: null, ...histories };
      if (live.memoryUsed) history.memory = pushHistory(history.memory, live.memoryUsed.bytes);
      const sample: Sample = { at: this.now(), exits: live.exits, cpuTimeUs: live.cpuTimeUs };
      const r = rates(this.#samples.get(record.name), sample);
      this.#samples.set(record.name, sample);
      if (r) {
        history.cpu = pushHistory(history.cpu, r.cpuPercent);
        history.exits = pushHistory(history.exits, r.exitsPerSecond);
      }
      this.#histories.set(record.name, history);
      const state = this.#stopping.has(record.name) && (live.state === 'running' || live.state === 'paused') ? 'stopping' : live.state;
      return {
        ...base, state, exits: live.exits,
        cpuPercent: r?.cpuPercent ?? null, exitsPerSecond: r?.exitsPerSecond ?? null,
        cpuHistory: history.cpu, exitsHistory: history.exits, memoryHistory: history.memory,
      };
    }));
    const names = new Set(records.map((r) => r.name));
    const now = this.now();
    // Instances that left the list since the last poll stay a while, with how they ended.
    for (const previous of this.#rows) {
      if (names.has(previous.name) || previous.state === 'ended') continue;
      const said = this.source.outcome?.(previous.name);
      this.#ended.set(previous.name, {
        ...previous, state: 'ended', outcome: said?.outcome ?? 'ended (it left no outcome)', endedAt: said?.endedAt ?? now,
        cpuPercent: null, exitsPerSecond: null, memoryUsed: null,
      });
    }
    for (const [name, row] of this.#ended) if (names.has(name) || now - row.endedAt! > ENDED_KEEP_MS) this.#ended.delete(name);
    // Forget instances that are gone, so a new one with the same name starts afresh.
    for (const name of [...this.#samples.keys()]) if (!names.has(name)) this.#samples.delete(name);
    for (const name of [...this.#histories.keys()]) if (!names.has(name)) this.#histories.delete(name);
    for (const name of [...this.#stopping]) if (!names.has(name)) this.#stopping.delete(name);
    this.#rows = [...rows, ...this.#ended.values()];
    for (const listener of this.#listeners) listener(this.#rows);
    return this.#rows;
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

// ---------------------------------------------------------------------------------------------
// Sorting and filtering (htop's and lazydocker's: a sort column that can be inverted, a filter
// that keeps the rows whose name, kind, state or image hold the text).

export const SORT_KEYS = ['started', 'name', 'state', 'cpu', 'memory', 'uptime', 'exits'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export interface Arrangement {
  sort: SortKey;
  /** Largest first (the natural order for CPU, memory, uptime and exits). */
  descending: boolean;
  filter: string;
  /** Ended instances are shown (lazydocker's `e` hides stopped containers). */
  showEnded: boolean;
}

export const DEFAULT_ARRANGEMENT: Arrangement = { sort: 'started', descending: false, filter: '', showEnded: true };

export const SORT_TITLES: Record<SortKey, string> = {
  started: 'start order', name: 'name', state: 'state', cpu: 'CPU%', memory: 'memory', uptime: 'uptime', exits: 'exits/s',
};

/** Whether a key sorts largest first when chosen (htop: CPU and memory do). */
export const sortsDescending = (key: SortKey): boolean => key === 'cpu' || key === 'memory' || key === 'uptime' || key === 'exits';

function sortValue(row: Row, key: SortKey): number | string {
  switch (key) {
    case 'started': return 0;
    case 'name': return row.name;
    case 'state': return row.state;
    case 'cpu': return row.cpuPercent ?? -1;
    case 'memory': return row.memoryUsed ?? -1;
    case 'uptime': return row.uptimeMs;
    case 'exits': return row.exitsPerSecond ?? -1;
  }
}

/** The rows to show, in order: filtered, then sorted (Array.prototype.sort is stable, so ties keep the start order). */
export function arrange(rows: readonly Row[], a: Arrangement): Row[] {
  const needle = a.filter.trim().toLowerCase();
  const kept = rows.filter((r) => (a.showEnded || r.state !== 'ended')
    && (!needle || [r.name, r.kind, r.state, r.image].some((v) => v.toLowerCase().includes(needle))));
  if (a.sort === 'started') return a.descending ? kept.reverse() : kept;
  const sign = a.descending ? -1 : 1;
  return kept.sort((x, y) => {
    const p = sortValue(x, a.sort);
    const q = sortValue(y, a.sort);
    return sign * (typeof p === 'number' && typeof q === 'number' ? p - q : String(p).localeCompare(String(q)));
  });
}

// Text for the dashboard: table rows, sparklines, the console pane's lines. Pure functions.

import { niceCeil } from '../compare/stats.js';
import { HISTORY, type Row } from './model.js';

export const EMPTY_MESSAGE = 'No VMs or containers are running. Press b to boot the demo guest or c to start a container.';

export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** Memory in a table cell, at most 9 characters: 31.2 MiB, 256 MiB, 23.5 GiB, 812 KiB. */
export function formatMemory(bytes: number): string {
  const whole = (x: number, digits: number) => String(Number(x.toFixed(digits)));
  if (bytes >= 2 ** 30) return `${whole(bytes / 2 ** 30, 1)} GiB`;
  if (bytes >= 100 * 2 ** 20) return `${whole(bytes / 2 ** 20, 0)} MiB`;
  if (bytes >= 2 ** 20) return `${whole(bytes / 2 ** 20, 1)} MiB`;
  return `${whole(bytes / 1024, 0)} KiB`;
}

export function formatRate(value: number | null): string {
  if (value === null) return '-';
  if (value >= 10_000) return `${(value / 1000).toFixed(0)}k`;
  if (value >= 100) return value.toFixed(0);
  return value.toFixed(1);
}

/** A column of the table; `optional` ones are shown only when the terminal has the room. */
export interface Column {
  title: string;
  width: number;
  align: 'left' | 'right';
  value(row: Row, marked: boolean): string;
  optional?: boolean;
}

const NAME_MIN = 9;
const NAME_MAX = 24;

/** The memory used, as MEMORY shows it: "31.2 MiB", or "-" before it is known. */
export function formatUsed(row: Row): string {
  return row.memoryUsed === null ? '-' : formatMemory(row.memoryUsed);
}

const OTHER_COLUMNS: Column[] = [
  { title: 'KIND', width: 9, align: 'left', value: (r) => r.kind },
  { title: 'STATE', width: 12, align: 'left', value: (r) => r.state },
  { title: 'CPUS', width: 4, align: 'right', value: (r) => String(Number(r.cpus.toFixed(2))) },
  { title: 'MEMORY', width: 9, align: 'right', value: formatUsed },
  { title: 'LIMIT', width: 9, align: 'right', value: (r) => (r.unlimited ? 'none' : formatMemory(r.memory)), optional: true },
  { title: 'CPU%', width: 6, align: 'right', value: (r) => formatRate(r.cpuPercent) },
  { title: 'EXITS/S', width: 7, align: 'right', value: (r) => (r.kind === 'vm' ? formatRate(r.exitsPerSecond) : '-') },
  { title: 'UPTIME', width: 7, align: 'right', value: (r) => formatUptime(r.uptimeMs) },
  { title: 'PID', width: 7, align: 'right', value: (r) => String(r.pid), optional: true },
];

/**
 * The table's columns for a line of `width` characters: every required column always (from 80
 * columns on), the optional ones (LIMIT, then PID) when they fit, NAME taking what is left (up to
 * NAME_MAX), two spaces between columns when there is the room, one otherwise.
 */
export function columnsFor(width: number): { columns: Column[]; gap: number } {
  const sum = (cols: Column[], gap: number) => cols.reduce((n, c) => n + c.width, 0) + gap * cols.length;
  const required = OTHER_COLUMNS.filter((c) => !c.optional);
  // The limit before the pid, and either before the wider gap.
  const choices = [OTHER_COLUMNS, OTHER_COLUMNS.filter((c) => c.title !== 'PID'), required];
  for (const others of choices) {
    for (const gap of [2, 1]) {
      const room = width - sum(others, gap);
      if (room >= NAME_MIN + (others === required ? 0 : 3)) return { columns: [nameColumn(Math.min(NAME_MAX, room)), ...others], gap };
    }
  }
  return { columns: [nameColumn(NAME_MIN), ...required], gap: 1 };
}

function nameColumn(width: number): Column {
  return { title: 'NAME', width, align: 'left', value: (r, marked) => `${marked ? '*' : ''}${r.name}` };
}

function cells(values: string[], columns: Column[], gap: number): string {
  return values.map((v, i) => {
    const { width, align } = columns[i]!;
    const cell = v.length > width ? `${v.slice(0, width - 1)}~` : v;
    return align === 'right' ? cell.padStart(width) : cell.padEnd(width);
  }).join(' '.repeat(gap));
}

/** The table's heading line for `width` characters. */
export function headerLine(width = 80): string {
  const { columns, gap } = columnsFor(width);
  return cells(columns.map((c) => c.title), columns, gap);
}

export function rowLine(row: Row, marked = false, width = 80): string {
  const { columns, gap } = columnsFor(width);
  return cells(columns.map((c) => c.value(row, marked)), columns, gap);
}

const BLOCKS = '▁▂▃▄▅▆▇█';

/** The last `width` values as block characters, scaled to the largest (or to `max` if given), right-aligned at now. */
export function sparkline(values: number[], width: number, max?: number): string {
  const shown = values.slice(Math.max(0, values.length - width));
  const top = max ?? Math.max(0, ...shown);
  const line = shown.map((v) => {
    if (top <= 0 || v <= 0) return BLOCKS[0]!;
    return BLOCKS[Math.min(BLOCKS.length - 1, Math.round((v / top) * (BLOCKS.length - 1)))]!;
  }).join('');
  return line.padStart(width, ' ');
}

/** A chart's top as a short round number: 5, 200, 20k, 1M. */
export function formatScale(n: number): string {
  if (n >= 1e6) return `${Number((n / 1e6).toPrecision(3))}M`;
  if (n >= 1e4) return `${Number((n / 1e3).toPrecision(3))}k`;
  return String(Number(n.toPrecision(3)));
}

/** The top of each chart; the side-by-side view gives both panes the same ones. */
export interface ChartScales {
  cpu: number;
  memory: number;
  exits: number;
}

/** Scales that fit the rows' histories (CPU at least 100 %). */
export function chartScales(rows: Row[]): ChartScales {
  const top = (pick: (r: Row) => number[]) => niceCeil(Math.max(0, ...rows.flatMap(pick)));
  // Memory on round MiB (or GiB) values, not round byte counts.
  const memory = top((r) => r.memoryHistory.map((b) => b / 2 ** 20)) * 2 ** 20;
  return { cpu: Math.max(100, top((r) => r.cpuHistory)), memory, exits: top((r) => r.exitsHistory) };
}

/** Lines of text in the chart pane (statsLines gives this many for every kind). */
export const CHART_LINES = 6;

const LABEL = 8;
const VALUE = 9;
const SCALE = 10;

/** How often the dashboard samples (the charts' time axis): one column per poll. */
export const SAMPLE_SECONDS = 1;

/**
 * The stats block for one instance, as the chart pane and the side-by-side view show it: what
 * it is, its memory (used, how it was measured, the limit apart), then CPU %, memory and exits/s
 * charts, each with its scale, over a time axis. Every chart is right-aligned at "now" and has
 * the same width for a given `width`, so two panes of one width line up in time.
 */
export function statsLines(row: Row, width: number, scales: ChartScales = chartScales([row])): string[] {
  const chart = Math.max(4, Math.min(HISTORY, width - LABEL - VALUE - SCALE));
  const line = (label: string, value: string, values: number[], top: number, scale: string) =>
    `${label.padEnd(LABEL)}${value.padStart(VALUE - 1)} ${sparkline(values, chart, top)} ${scale}`;
  const used = row.state === 'ended' ? 'no memory held now' : row.memoryUsed === null ? 'memory used: unknown' : `${formatMemory(row.memoryUsed)} used (${row.memoryHow === 'PSS' ? 'PSS' : 'cgroup'})`;
  const limit = row.kind === 'vm' ? `RAM ${formatMemory(row.memory)}` : row.unlimited ? 'no limit' : `limit ${formatMemory(row.memory)}`;
  const cpus = Number(row.cpus.toFixed(2));
  const title = `${row.name} (${row.kind}, ${row.state})${row.outcome ? `: ${row.outcome}` : ''}`;
  const ago = `${Math.round(chart * SAMPLE_SECONDS)}${chart >= 12 ? ' s ago' : 's'}`;
  const axis = `${' '.repeat(LABEL + VALUE)}${chart >= ago.length + 4 ? ago.padEnd(chart - 3) : ' '.repeat(Math.max(0, chart - 3))}now`;
  return [
    title,
    `${used}, ${limit}, ${cpus} ${row.kind === 'vm' ? 'vCPU' : 'CPU'}${cpus === 1 ? '' : 's'}, up ${formatUptime(row.uptimeMs)}${row.kind === 'vm' && row.exits !== null ? `, ${row.exits} exits` : ''}`,
    line('CPU %', formatRate(row.cpuPercent), row.cpuHistory, scales.cpu, `0-${scales.cpu}%`),
    line('memory', formatUsed(row), row.memoryHistory, scales.memory, `0-${formatMemory(scales.memory)}`),
    row.kind === 'vm'
      ? line('exits/s', formatRate(row.exitsPerSecond), row.exitsHistory, scales.exits, `0-${formatScale(scales.exits)}/s`)
      : 'exits/s  none for containers (no VM)',
    axis,
  ];
}

/**
 * The console pane's text: guest output reduced to lines (escape sequences dropped, backspace
 * and carriage return honoured well enough for a shell prompt), the last `limit` kept.
 */
export class ConsoleBuffer {
  #lines: string[] = [''];
  #escape: 'none' | 'esc' | 'csi' = 'none';

  constructor(private readonly limit = 500) {}

  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    for (const ch of text) {
      if (this.#escape === 'esc') {
        this.#escape = ch === '[' ? 'csi' : 'none';
        continue;
      }
      if (this.#escape === 'csi') {
        if (ch >= '@' && ch <= '~') this.#escape = 'none';
        continue;
      }
      const last = this.#lines.length - 1;
      if (ch === '\x1b') this.#escape = 'esc';
      else if (ch === '\n') this.#lines.push('');
      else if (ch === '\r') continue;
      else if (ch === '\b' || ch === '\x7f') this.#lines[last] = this.#lines[last]!.slice(0, -1);
      else if (ch === '\t') this.#lines[last] += '    ';
      else if (ch >= ' ') this.#lines[last] += ch;
    }
    if (this.#lines.length > this.limit) this.#lines = this.#lines.slice(this.#lines.length - this.limit);
  }

  clear(): void {
    this.#lines = [''];
    this.#escape = 'none';
  }

  /** The last `height` lines. */
  tail(height: number): string[] {
    return this.#lines.slice(Math.max(0, this.#lines.length - height));
  }

  text(): string {
    return this.#lines.join('\n');
  }
}

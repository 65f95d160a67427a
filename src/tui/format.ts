// Text for the dashboard: table rows, sparklines, the console pane's lines. Pure functions.

import { formatSize } from '../boot/format.js';
import { HISTORY, type Row } from './model.js';

export const EMPTY_MESSAGE = 'No VMs or containers are running. Press b to boot the demo guest or c to start a container.';

export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** Memory in a table cell: MiB below a GiB (256 MiB), GiB from there (23.5 GiB). */
export function formatMemory(bytes: number): string {
  if (bytes >= 2 ** 30) return `${Number((bytes / 2 ** 30).toFixed(1))} GiB`;
  return formatSize(bytes);
}

export function formatRate(value: number | null): string {
  if (value === null) return '-';
  if (value >= 10_000) return `${(value / 1000).toFixed(0)}k`;
  if (value >= 100) return value.toFixed(0);
  return value.toFixed(1);
}

export const COLUMNS = [
  { title: 'NAME', width: 18 },
  { title: 'KIND', width: 9 },
  { title: 'STATE', width: 12 },
  { title: 'VCPUS', width: 5 },
  { title: 'MEMORY', width: 9 },
  { title: 'CPU%', width: 6 },
  { title: 'EXITS/S', width: 8 },
  { title: 'UPTIME', width: 7 },
] as const;

function cells(values: string[]): string {
  return values.map((v, i) => {
    const width = COLUMNS[i]!.width;
    const cell = v.length > width ? `${v.slice(0, width - 1)}~` : v;
    return i >= 3 ? cell.padStart(width) : cell.padEnd(width);
  }).join('  ');
}

export function headerLine(): string {
  return cells(COLUMNS.map((c) => c.title));
}

export function rowLine(row: Row, marked = false): string {
  return cells([
    `${marked ? '*' : ''}${row.name}`, row.kind, row.state, String(row.cpus), formatMemory(row.memory),
    formatRate(row.cpuPercent), row.kind === 'vm' ? formatRate(row.exitsPerSecond) : '-', formatUptime(row.uptimeMs),
  ]);
}

const BLOCKS = '▁▂▃▄▅▆▇█';

/** The last `width` values as block characters, scaled to the largest (or to `max` if given). */
export function sparkline(values: number[], width: number, max?: number): string {
  const shown = values.slice(Math.max(0, values.length - width));
  const top = max ?? Math.max(0, ...shown);
  const line = shown.map((v) => {
    if (top <= 0 || v <= 0) return BLOCKS[0]!;
    return BLOCKS[Math.min(BLOCKS.length - 1, Math.round((v / top) * (BLOCKS.length - 1)))]!;
  }).join('');
  return line.padStart(width, ' ');
}

/** The stats block for one instance, as the chart pane and the side-by-side view show it. */
export function statsLines(row: Row, width: number): string[] {
  const chart = Math.max(10, Math.min(HISTORY, width - 20));
  return [
    `${row.name} (${row.kind}, ${row.state})`,
    `vCPUs ${row.cpus}  memory ${formatMemory(row.memory)}  up ${formatUptime(row.uptimeMs)}${row.exits === null ? '' : `  exits ${row.exits}`}`,
    `CPU %   ${formatRate(row.cpuPercent).padStart(7)}  ${sparkline(row.cpuHistory, chart, Math.max(100, ...row.cpuHistory)).trimStart()}`,
    `exits/s ${(row.kind === 'vm' ? formatRate(row.exitsPerSecond) : '-').padStart(7)}  ${row.kind === 'vm' ? sparkline(row.exitsHistory, chart).trimStart() : ''}`,
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

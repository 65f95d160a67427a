// The dashboard's layout at every terminal size from 80x24 up (and below, down to 40x13): every
// part inside the screen, none over another, the console always with rows, the table's columns
// within its border, buttons apart.

import { describe, expect, it } from 'vitest';
import { CHART_LINES, columnsFor, headerLine, rowLine, statsLines } from '../../src/tui/format.js';
import { BUTTONS, buttonText } from '../../src/tui/keys.js';
import { CONSOLE_MIN, computeLayout, placeButtons, type Layout, type Rect } from '../../src/tui/layout.js';
import type { Row } from '../../src/tui/model.js';

const row: Row = {
  name: 'a-rather-long-instance-name-indeed', kind: 'container', state: 'unresponsive', cpus: 0.5, memory: 25 * 2 ** 30,
  memoryUsed: 1.5 * 2 ** 30, memoryHow: 'cgroup', uptimeMs: 100 * 3600_000, cpuPercent: 199.9, exitsPerSecond: null, exits: null,
  pid: 4_194_303, image: 'sh', cpuHistory: [1, 2], exitsHistory: [], memoryHistory: [2 ** 30],
};

function rects(l: Layout): [string, Rect][] {
  const out: [string, Rect][] = [['header', l.header], ['table', l.table], ['charts', l.charts], ['console', l.console], ['buttons', l.buttons], ['status', l.status]];
  if (l.chartsB) out.push(['chartsB', l.chartsB]);
  if (l.comparison) out.push(['comparison', l.comparison]);
  return out;
}

const overlap = (a: Rect, b: Rect) => a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height && b.top < a.top + a.height;

function check(width: number, height: number, sideBySide: boolean, rows: number, comparisonLines: number): Layout {
  const l = computeLayout({ width, height, rows, chartLines: CHART_LINES, sideBySide, comparisonLines });
  const all = rects(l);
  const where = `${width}x${height}${sideBySide ? ' side by side' : ''}, ${rows} rows`;
  for (const [name, r] of all) {
    expect(r.top, `${name} at ${where}`).toBeGreaterThanOrEqual(0);
    expect(r.left, `${name} at ${where}`).toBeGreaterThanOrEqual(0);
    expect(r.top + r.height, `${name} at ${where}`).toBeLessThanOrEqual(height);
    expect(r.left + r.width, `${name} at ${where}`).toBeLessThanOrEqual(width);
    expect(r.height, `${name} at ${where}`).toBeGreaterThan(0);
  }
  for (const [i, [a, ra]] of all.entries()) {
    for (const [b, rb] of all.slice(i + 1)) expect(overlap(ra, rb), `${a} over ${b} at ${where}`).toBe(false);
  }
  expect(l.consoleRows, where).toBe(l.console.height - 2);
  expect(l.tableRows, where).toBeGreaterThanOrEqual(1);
  return l;
}

describe('computeLayout', () => {
  it('fits every part, apart, with console rows, at every size from 80x24 to 200x60', () => {
    for (let width = 80; width <= 200; width += 7) {
      for (let height = 24; height <= 60; height += 3) {
        for (const sideBySide of [false, true]) {
          for (const rows of [0, 1, 2, 5, 40]) {
            const l = check(width, height, sideBySide, rows, 11);
            expect(l.consoleRows).toBeGreaterThanOrEqual(CONSOLE_MIN);
            // Side by side keeps a console and shows at least a line of the comparison.
            if (sideBySide) expect(l.comparisonRows).toBeGreaterThanOrEqual(1);
          }
        }
      }
    }
  });

  it('keeps a console row and no overlap below 80x24 too, down to 40x13', () => {
    for (let width = 40; width < 80; width += 5) {
      for (let height = 13; height < 24; height += 2) {
        for (const sideBySide of [false, true]) {
          const l = check(width, height, sideBySide, 3, 11);
          expect(l.consoleRows).toBeGreaterThanOrEqual(1);
        }
      }
    }
  });

  it('gives the charts every line at 80x24 and the comparison its lines at 120x40', () => {
    const small = computeLayout({ width: 80, height: 24, rows: 1, chartLines: CHART_LINES, sideBySide: false, comparisonLines: 0 });
    expect(small.charts.height).toBe(CHART_LINES + 2);
    const big = computeLayout({ width: 120, height: 40, rows: 2, chartLines: CHART_LINES, sideBySide: true, comparisonLines: 11 });
    expect(big.comparisonRows).toBe(11);
    expect(big.comparisonMissing).toBe(0);
    expect(big.consoleRows).toBeGreaterThanOrEqual(CONSOLE_MIN);
  });
});

describe('the table and charts at a width', () => {
  it('keeps every required column, whole, within the table at 80 columns and more', () => {
    for (let width = 80; width <= 200; width++) {
      const inner = width - 3; // border on each side, one space before each line
      const head = headerLine(inner);
      expect(head.length, `${width}`).toBeLessThanOrEqual(inner);
      expect(head).toMatch(/^NAME\s+KIND\s+STATE\s+CPUS\s+MEMORY\s+(LIMIT\s+)?CPU%\s+EXITS\/S\s+UPTIME/);
      expect(rowLine(row, true, inner).length).toBeLessThanOrEqual(inner);
      const { columns } = columnsFor(inner);
      expect(columns[0]!.width).toBeGreaterThanOrEqual(9);
    }
    // With the room, the limit and the pid too.
    expect(headerLine(117)).toMatch(/MEMORY\s+LIMIT\s+CPU%\s+EXITS\/S\s+UPTIME\s+PID/);
    expect(rowLine(row, false, 117)).toMatch(/1\.5 GiB\s+25 GiB\s+200\s+-\s+100h00m\s+4194303/);
  });

  it('draws charts of one width for one pane width, so side-by-side axes line up', () => {
    for (const width of [38, 58, 78]) {
      const vm = statsLines({ ...row, kind: 'vm', exitsHistory: [5, 10] }, width);
      const ctr = statsLines(row, width);
      expect(vm).toHaveLength(CHART_LINES);
      expect(ctr).toHaveLength(CHART_LINES);
      // "now" ends each axis at the same column, under the sparklines' last column.
      expect(vm[5]!.indexOf('now')).toBe(ctr[5]!.indexOf('now'));
      expect(vm[2]!.lastIndexOf(' 0-')).toBe(ctr[2]!.lastIndexOf(' 0-'));
      for (const line of [...vm.slice(2), ...ctr.slice(2, 4), ctr[5]!]) expect([...line].length, line).toBeLessThanOrEqual(width);
    }
  });
});

describe('placeButtons', () => {
  const texts = BUTTONS.map(buttonText);
  const help = BUTTONS.findIndex((b) => b.action === 'help');

  it('places buttons apart, inside the width, the help button always', () => {
    for (let width = 20; width <= 200; width++) {
      const placed = placeButtons(texts, width, help);
      expect(placed.some((p) => p.index === help), `${width}`).toBe(true);
      const spans = placed.map((p) => [p.left, p.left + texts[p.index]!.length] as const).sort((a, b) => a[0] - b[0]);
      for (const [i, [from, to]] of spans.entries()) {
        expect(to).toBeLessThanOrEqual(width);
        if (i > 0) expect(from).toBeGreaterThan(spans[i - 1]![1]);
      }
    }
    expect(placeButtons(texts, 200, help)).toHaveLength(BUTTONS.length);
  });
});

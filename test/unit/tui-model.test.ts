// The dashboard's model without a terminal: rates from counter deltas, histories, unresponsive
// instances, and forgetting instances that are gone.

import { describe, expect, it } from 'vitest';
import type { InstanceStatus } from '../../src/api/protocol.js';
import type { InstanceRecord } from '../../src/api/runtime-dir.js';
import { DEFAULT_ARRANGEMENT, DashboardModel, ENDED_KEEP_MS, HISTORY, arrange, rates, type InstanceSource, type Row } from '../../src/tui/model.js';
import { ConsoleBuffer, EMPTY_MESSAGE, chartScales, formatMemory, formatRate, formatUptime, rowLine, sparkline, statsLines } from '../../src/tui/format.js';
import { niceCeil } from '../../src/compare/stats.js';
import type { InstanceOutcome } from '../../src/api/runtime-dir.js';

function record(name: string, kind: 'vm' | 'container' = 'vm'): InstanceRecord {
  return { name, kind, pid: 1, startedAt: 0, cpus: 2, memory: 256 * 2 ** 20, image: 'hello.elf' };
}

class FakeSource implements InstanceSource {
  records: InstanceRecord[] = [];
  counters = new Map<string, { exits: number; cpuTimeUs: number; state?: InstanceStatus['state']; used?: number }>();
  outcomes = new Map<string, InstanceOutcome>();
  list() { return this.records; }
  outcome(name: string) { return this.outcomes.get(name); }
  async status(name: string): Promise<InstanceStatus> {
    const c = this.counters.get(name);
    if (!c) throw new Error('not answering');
    const r = this.records.find((x) => x.name === name)!;
    return {
      name, kind: r.kind, state: c.state ?? 'running', cpus: r.cpus, memory: r.memory, uptimeMs: 5000, exits: c.exits, cpuTimeUs: c.cpuTimeUs,
      ...(c.used === undefined ? {} : { memoryUsed: { bytes: c.used, how: r.kind === 'vm' ? 'PSS' as const : 'cgroup' as const } }),
    };
  }
}

describe('rates', () => {
  it('turns counter deltas into CPU % and exits per second', () => {
    expect(rates({ at: 1000, exits: 100, cpuTimeUs: 0 }, { at: 2000, exits: 1100, cpuTimeUs: 250_000 })).toEqual({ cpuPercent: 25, exitsPerSecond: 1000 });
    // Half a second, two busy vCPUs: 200 %.
    expect(rates({ at: 0, exits: 0, cpuTimeUs: 0 }, { at: 500, exits: 50, cpuTimeUs: 1_000_000 })).toEqual({ cpuPercent: 200, exitsPerSecond: 100 });
  });

  it('gives nothing without an earlier sample, without elapsed time, or when a counter went back', () => {
    expect(rates(undefined, { at: 1, exits: 1, cpuTimeUs: 1 })).toBeNull();
    expect(rates({ at: 5, exits: 0, cpuTimeUs: 0 }, { at: 5, exits: 9, cpuTimeUs: 9 })).toBeNull();
    expect(rates({ at: 0, exits: 500, cpuTimeUs: 0 }, { at: 1000, exits: 10, cpuTimeUs: 10 })).toBeNull();
  });
});

describe('DashboardModel', () => {
  it('polls the source, computes rates from the second poll on and keeps a history', async () => {
    const source = new FakeSource();
    let now = 10_000;
    const model = new DashboardModel(source, () => now);
    source.records = [record('web'), record('box', 'container')];
    source.counters.set('web', { exits: 0, cpuTimeUs: 0 });
    source.counters.set('box', { exits: 0, cpuTimeUs: 0 });
    const seen: number[] = [];
    model.onChange((rows) => seen.push(rows.length));

    const first = await model.poll();
    expect(first.map((r) => [r.name, r.state, r.cpuPercent, r.exitsPerSecond])).toEqual([['web', 'running', null, null], ['box', 'running', null, null]]);

    now += 1000;
    source.counters.set('web', { exits: 2000, cpuTimeUs: 500_000 });
    source.counters.set('box', { exits: 0, cpuTimeUs: 100_000 });
    const second = await model.poll();
    expect(second[0]).toMatchObject({ name: 'web', cpuPercent: 50, exitsPerSecond: 2000, exits: 2000, cpuHistory: [50], exitsHistory: [2000] });
    expect(second[1]).toMatchObject({ name: 'box', kind: 'container', cpuPercent: 10, exitsPerSecond: 0 });
    expect(seen).toEqual([2, 2]);
    expect(model.rows).toBe(second);
  });

  it('keeps at most HISTORY samples', async () => {
    const source = new FakeSource();
    let now = 0;
    const model = new DashboardModel(source, () => now);
    source.records = [record('web')];
    for (let i = 0; i <= HISTORY + 5; i++) {
      source.counters.set('web', { exits: i * 10, cpuTimeUs: 0 });
      now += 1000;
      await model.poll();
    }
    expect(model.rows[0]!.exitsHistory).toHaveLength(HISTORY);
    expect(model.rows[0]!.exitsHistory.every((v) => v === 10)).toBe(true);
  });

  it('shows an instance that does not answer as unresponsive, from its record', async () => {
    const source = new FakeSource();
    source.records = [record('stuck')];
    const [row] = await new DashboardModel(source, () => 3000).poll();
    expect(row).toMatchObject({ name: 'stuck', state: 'unresponsive', cpus: 2, memory: 256 * 2 ** 20, uptimeMs: 3000, cpuPercent: null, exits: null });
  });

  it('keeps an instance that ended for a while, with its outcome, then forgets it so a new one of that name starts afresh', async () => {
    const source = new FakeSource();
    let now = 0;
    const model = new DashboardModel(source, () => now);
    source.records = [record('web'), record('box', 'container')];
    source.counters.set('web', { exits: 1000, cpuTimeUs: 0, used: 30 * 2 ** 20 });
    source.counters.set('box', { exits: 0, cpuTimeUs: 0 });
    await model.poll();
    source.records = [record('box', 'container')];
    source.outcomes.set('web', { name: 'web', kind: 'vm', endedAt: 500, outcome: 'guest powered off (ACPI S5)' });
    now += 1000;
    const rows = await model.poll();
    expect(rows.map((r) => [r.name, r.state, r.outcome])).toEqual([['box', 'running', undefined], ['web', 'ended', 'guest powered off (ACPI S5)']]);
    expect(rows[1]).toMatchObject({ memoryUsed: null, memoryHistory: [30 * 2 ** 20], cpuPercent: null, endedAt: 500 });
    // One that left no outcome (killed) still says it ended.
    source.records = [];
    now += 1000;
    expect((await model.poll()).find((r) => r.name === 'box')).toMatchObject({ state: 'ended', outcome: 'ended (it left no outcome)', endedAt: now });
    now = 500 + ENDED_KEEP_MS + 1;
    expect((await model.poll()).map((r) => r.name)).toEqual(['box']);
    now += ENDED_KEEP_MS;
    expect(await model.poll()).toEqual([]);
    source.records = [record('web')];
    source.counters.set('web', { exits: 5, cpuTimeUs: 0 });
    now += 1000;
    const [row] = await model.poll();
    expect(row).toMatchObject({ state: 'running', exitsPerSecond: null, exitsHistory: [], memoryHistory: [] });
  });

  it('shows memory used apart from the limit, and stopping while a stop is under way', async () => {
    const source = new FakeSource();
    const model = new DashboardModel(source, () => 0);
    source.records = [record('web'), record('box', 'container')];
    source.counters.set('web', { exits: 0, cpuTimeUs: 0, used: 31 * 2 ** 20 });
    source.counters.set('box', { exits: 0, cpuTimeUs: 0, used: 2 ** 20, state: 'stopping' });
    const rows = await model.poll();
    expect(rows.map((r) => [r.state, r.memory, r.memoryUsed, r.memoryHow])).toEqual([
      ['running', 256 * 2 ** 20, 31 * 2 ** 20, 'PSS'], ['stopping', 256 * 2 ** 20, 2 ** 20, 'cgroup'],
    ]);
    expect(rows[0]!.memoryHistory).toEqual([31 * 2 ** 20]);
    // Asked to stop here: stopping at once, and on the next polls while it still says running.
    model.stopping('web');
    expect(model.rows[0]!.state).toBe('stopping');
    expect((await model.poll())[0]!.state).toBe('stopping');
  });
});

describe('arrange', () => {
  const base = (name: string, extra: Partial<Row>): Row => ({
    name, kind: 'vm', state: 'running', cpus: 1, memory: 2 ** 28, memoryUsed: null, memoryHow: null, uptimeMs: 0, cpuPercent: null,
    exitsPerSecond: null, exits: null, pid: 1, image: 'hello.elf', cpuHistory: [], exitsHistory: [], memoryHistory: [], ...extra,
  });
  const rows = [
    base('b', { cpuPercent: 5, memoryUsed: 30, uptimeMs: 3 }),
    base('a', { kind: 'container', image: 'sh', cpuPercent: 50, memoryUsed: 10, uptimeMs: 1 }),
    base('c', { state: 'ended', cpuPercent: null, memoryUsed: 20, uptimeMs: 2 }),
  ];
  const names = (a: Partial<typeof DEFAULT_ARRANGEMENT>) => arrange(rows, { ...DEFAULT_ARRANGEMENT, ...a }).map((r) => r.name).join('');

  it('sorts by a column, largest first where htop does, inverted on request, ties in start order', () => {
    expect(names({})).toBe('bac');
    expect(names({ sort: 'name' })).toBe('abc');
    expect(names({ sort: 'cpu', descending: true })).toBe('abc');
    expect(names({ sort: 'memory', descending: true })).toBe('bca');
    expect(names({ sort: 'uptime', descending: false })).toBe('acb');
    expect(names({ descending: true })).toBe('cab');
  });

  it('filters by name, kind, state or image, case-insensitively, and hides ended ones on request', () => {
    expect(names({ filter: 'CONT' })).toBe('a');
    expect(names({ filter: 'ended' })).toBe('c');
    expect(names({ filter: 'hello' })).toBe('bc');
    expect(names({ filter: 'zzz' })).toBe('');
    expect(names({ showEnded: false })).toBe('ba');
  });
});

describe('dashboard text', () => {
  it('formats rows, rates and uptimes in fixed columns', () => {
    expect(formatUptime(59_999)).toBe('59s');
    expect(formatUptime(61_000)).toBe('1m01s');
    expect(formatUptime(3_660_000)).toBe('1h01m');
    expect(formatMemory(256 * 2 ** 20)).toBe('256 MiB');
    expect(formatMemory(2 ** 30)).toBe('1 GiB');
    expect(formatMemory(25_276_514_304)).toBe('23.5 GiB');
    expect(formatMemory(32.14 * 2 ** 20)).toBe('32.1 MiB');
    expect(formatMemory(812 * 1024)).toBe('812 KiB');
    expect(formatRate(null)).toBe('-');
    expect(formatRate(3.14159)).toBe('3.1');
    expect(formatRate(250.4)).toBe('250');
    expect(formatRate(25_000)).toBe('25k');
    const row: Row = {
      ...record('web'), state: 'running', uptimeMs: 5000, cpuPercent: 12.5, exitsPerSecond: 300, exits: 9000,
      memoryUsed: 31.4 * 2 ** 20, memoryHow: 'PSS', cpuHistory: [], exitsHistory: [], memoryHistory: [],
    };
    expect(rowLine(row, false, 77)).toMatch(/^web\s+vm\s+running\s+2\s+31\.4 MiB\s+12\.5\s+300\s+5s$/);
    expect(rowLine({ ...row, kind: 'container', memoryUsed: null }, true, 77)).toMatch(/^\*web\s+container\s+running\s+2\s+-\s+12\.5\s+-\s+5s$/);
    const vm = statsLines(row, 78).join('\n');
    expect(vm).toMatch(/CPU %\s+12\.5/);
    expect(vm).toContain('31.4 MiB used (PSS), RAM 256 MiB, 2 vCPUs, up 5s, 9000 exits');
    // A container's chart says it has no exits rather than "exits 0", and names its limit.
    const ctr = statsLines({ ...row, kind: 'container', memoryHow: 'cgroup', state: 'ended', outcome: 'exited with code 0' }, 78).join('\n');
    expect(ctr).toContain('web (container, ended): exited with code 0');
    expect(ctr).toContain('no memory held now, limit 256 MiB');
    expect(statsLines({ ...row, kind: 'container', memoryHow: 'cgroup' }, 78)[1]).toContain('31.4 MiB used (cgroup), limit 256 MiB');
    expect(statsLines({ ...row, kind: 'container', unlimited: true }, 78)[1]).toContain('used (PSS), no limit');
    expect(rowLine({ ...row, kind: 'container', unlimited: true }, false, 117)).toMatch(/31\.4 MiB\s+none\s/);
    expect(ctr).not.toMatch(/exits \d/);
    expect(ctr).toContain('none for containers (no VM)');
    expect(EMPTY_MESSAGE).toBe('No VMs or containers are running. Press b to boot the demo guest or c to start a container.');
  });

  it('scales charts to round values and shows the scale', () => {
    expect([0.3, 1, 1.2, 4, 7, 99, 101, 4500].map(niceCeil)).toEqual([0.5, 1, 2, 5, 10, 100, 200, 5000]);
    const row = { ...record('web'), state: 'running' as const, uptimeMs: 0, cpuPercent: 150, exitsPerSecond: 3000, exits: 1, memoryUsed: 33 * 2 ** 20, memoryHow: 'PSS' as const,
      cpuHistory: [150], exitsHistory: [3000], memoryHistory: [33 * 2 ** 20] };
    expect(chartScales([row])).toEqual({ cpu: 200, exits: 5000, memory: 50 * 2 ** 20 });
    const lines = statsLines(row, 78);
    expect(lines[2]).toMatch(/ 0-200%$/);
    expect(lines[3]).toMatch(/ 0-50 MiB$/);
    expect(lines[4]).toMatch(/ 0-5000\/s$/);
    expect(lines[5]).toMatch(/^\s+\d+ s ago\s+now$/);
  });

  it('draws sparklines scaled to the largest value or a given maximum', () => {
    expect(sparkline([0, 1, 2, 4], 4)).toBe('▁▃▅█');
    expect(sparkline([50, 100], 4, 100)).toBe('  ▅█');
    expect(sparkline([1, 2, 3, 4, 5, 6], 3)).toBe('▆▇█');
    expect(sparkline([], 3)).toBe('   ');
  });

  it('reduces console output to lines: escapes dropped, backspace and CR honoured, a limit kept', () => {
    const console = new ConsoleBuffer(3);
    console.push('\x1b[2Jhello\r\nwor');
    console.push(Buffer.from('lx\bd\r\n> '));
    expect(console.tail(10)).toEqual(['hello', 'world', '> ']);
    console.push('a\nb\nc\n');
    expect(console.tail(10)).toEqual(['b', 'c', '']);
    expect(console.tail(2)).toEqual(['c', '']);
    console.clear();
    expect(console.text()).toBe('');
  });
});

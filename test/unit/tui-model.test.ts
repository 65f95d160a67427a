// The dashboard's model without a terminal: rates from counter deltas, histories, unresponsive
// instances, and forgetting instances that are gone.

import { describe, expect, it } from 'vitest';
import type { InstanceStatus } from '../../src/api/protocol.js';
import type { InstanceRecord } from '../../src/api/runtime-dir.js';
import { DashboardModel, HISTORY, rates, type InstanceSource } from '../../src/tui/model.js';
import { ConsoleBuffer, EMPTY_MESSAGE, formatMemory, formatRate, formatUptime, rowLine, sparkline, statsLines } from '../../src/tui/format.js';

function record(name: string, kind: 'vm' | 'container' = 'vm'): InstanceRecord {
  return { name, kind, pid: 1, startedAt: 0, cpus: 2, memory: 256 * 2 ** 20, image: 'hello.elf' };
}

class FakeSource implements InstanceSource {
  records: InstanceRecord[] = [];
  counters = new Map<string, { exits: number; cpuTimeUs: number; state?: InstanceStatus['state'] }>();
  list() { return this.records; }
  async status(name: string): Promise<InstanceStatus> {
    const c = this.counters.get(name);
    if (!c) throw new Error('not answering');
    const r = this.records.find((x) => x.name === name)!;
    return { name, kind: r.kind, state: c.state ?? 'running', cpus: r.cpus, memory: r.memory, uptimeMs: 5000, exits: c.exits, cpuTimeUs: c.cpuTimeUs };
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

  it('forgets an instance that is gone, so a new one of that name starts afresh', async () => {
    const source = new FakeSource();
    let now = 0;
    const model = new DashboardModel(source, () => now);
    source.records = [record('web')];
    source.counters.set('web', { exits: 1000, cpuTimeUs: 0 });
    await model.poll();
    source.records = [];
    now += 1000;
    expect(await model.poll()).toEqual([]);
    source.records = [record('web')];
    source.counters.set('web', { exits: 5, cpuTimeUs: 0 });
    now += 1000;
    const [row] = await model.poll();
    expect(row).toMatchObject({ exitsPerSecond: null, exitsHistory: [] });
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
    expect(formatRate(null)).toBe('-');
    expect(formatRate(3.14159)).toBe('3.1');
    expect(formatRate(250.4)).toBe('250');
    expect(formatRate(25_000)).toBe('25k');
    const row = { ...record('web'), state: 'running' as const, uptimeMs: 5000, cpuPercent: 12.5, exitsPerSecond: 300, exits: 9000, cpuHistory: [], exitsHistory: [] };
    expect(rowLine(row)).toMatch(/^web\s+vm\s+running\s+2\s+256 MiB\s+12\.5\s+300\s+5s$/);
    expect(rowLine({ ...row, kind: 'container' }, true)).toMatch(/^\*web\s+container\s+running\s+2\s+256 MiB\s+12\.5\s+-\s+5s$/);
    expect(statsLines(row, 80).join('\n')).toMatch(/CPU %\s+12\.5/);
    expect(EMPTY_MESSAGE).toBe('No VMs or containers are running. Press b to boot the demo guest or c to start a container.');
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

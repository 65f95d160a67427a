// Network throughput, both ways: an instance sending a stream of UDP datagrams to the host
// ("send"), and the host sending one to the instance ("receive"). Every side runs the same
// method: the sender sends datagrams of one size (1472 bytes of payload: full 1514-byte Ethernet
// frames at an MTU of 1500) as fast as it can for a fixed time, then a few short ones that mark
// the end; the receiver counts the full-size datagrams from its first to its last, on its own
// clock. The figure is the receiver's: payload bits (Mbit/s, 10^6 bits a second) and datagrams
// a second, over the interval between its first and last datagram. What the sender sent and the
// receiver did not get (the loss: queues that overflowed on the way) goes into the notes.
//
//   native:    compare-work udp-send → compare-work udp-recv, both host processes, over loopback.
//   container: compare-work in a container on a veth pair (--net veth: the tsvmm0 bridge, the
//              host at 10.88.0.1); its far end compare-work on the host.
//   VM:        virtio.elf mode=net op=stream in a VM in this process (Vm.create, as for the other
//              figures) whose virtio-net has a tap of its own; the tap is moved into a network
//              namespace made for this run before the VM starts (the VMM keeps its descriptor),
//              and the far end, compare-work, runs in that namespace on the tap's address. The
//              guest's driver is ours (guests/virtio.c), not Linux's: one frame per descriptor,
//              no offloads.

import { execFileSync, spawnSync } from 'node:child_process';
import { GATEWAY } from '../container/network.js';
import { pidAlive } from '../meta/pid-alive.js';
import type { LineClock } from './clock.js';
import type { CompareEnv } from './env.js';
import { withRatios, type Measurement, type Subject } from './model.js';
import { alongside, rounds, type Options } from './rounds.js';
import { runContainer, runVm, spawnWatched } from './run.js';
import { median } from './stats.js';

/** UDP payload per datagram: the largest that fits a 1500-byte MTU without fragments. */
export const PAYLOAD = 1472;
/** The port the receiver in a container or VM listens on (its own namespace: no one else's). */
const INSTANCE_PORT = 5201;
const TAP_IP = '10.0.2.2';
const GUEST_IP = '10.0.2.15';
const GUEST_MAC = '52:54:00:12:34:56';

export type Direction = 'send' | 'receive';

/** What a receiver reported: datagrams, and the time from the first to the last. */
export interface Received {
  packets: number;
  seconds: number;
}

/** "… received packets=N bytes=B ns=T" (compare-work) or "… us=T" (the guest), else an error. */
export function parseReceived(line: string | undefined, what: string): Received {
  const m = line === undefined ? null : /packets=(\d+) bytes=\d+ (ns|us)=(\d+)/.exec(line);
  if (!m) throw new Error(`${what}: no count of what it received${line ? ` in "${line}"` : ''}`);
  return { packets: Number(m[1]), seconds: Number(m[3]) / (m[2] === 'ns' ? 1e9 : 1e6) };
}

/** The packets a sender's "… sent packets=N …" line names. */
export function parseSent(line: string | undefined, what: string): number {
  const m = line === undefined ? null : /sent packets=(\d+)/.exec(line);
  if (!m) throw new Error(`${what}: did not say what it sent${line ? ` ("${line}")` : ''}`);
  return Number(m[1]);
}

/**
 * Datagrams a second and Mbit/s of payload from a receiver's count: the N - 1 datagrams after
 * the first, over the time since the first. Fewer than 100 datagrams is no stream.
 */
export function rates(r: Received, payload = PAYLOAD): { pps: number; mbps: number } {
  if (r.packets < 100 || !(r.seconds > 0)) throw new Error(`only ${r.packets} datagrams arrived in ${r.seconds.toFixed(3)} s`);
  const pps = (r.packets - 1) / r.seconds;
  return { pps, mbps: (pps * payload * 8) / 1e6 };
}

const ip = (args: string[], input?: string) => execFileSync('ip', input === undefined ? args : [...args, '-batch', '-'], { input, stdio: ['pipe', 'ignore', 'pipe'] });

const NS_PREFIX = 'tsvmm-cmp-';

/**
 * A network namespace for this run (the VMs' taps go there); removed by `remove`, with what is in
 * it. Namespaces of earlier runs whose process is gone (a compare killed mid-way) go first.
 */
function runNamespace(): { name: string; remove(): void } {
  const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const [, stale, pid] of listed.matchAll(new RegExp(`^(${NS_PREFIX}(\\d+)-\\w+)`, 'gm'))) {
    if (!pidAlive(Number(pid))) spawnSync('ip', ['netns', 'del', stale!]);
  }
  const name = `${NS_PREFIX}${process.pid}-${Date.now().toString(36)}`;
  ip(['netns', 'add', name]);
  return { name, remove: () => { spawnSync('ip', ['netns', 'del', name]); } };
}

let taps = 0;
/** A tap name no one else on the host uses: this process's id and a count (15 characters at most). */
const tapName = () => `tsc${process.pid}x${taps++}`.slice(0, 15);

/** Moves the VM's tap (the VMM holds it open) into the namespace and gives it TAP_IP/24 there. */
function moveTap(tap: string, ns: string): void {
  ip(['link', 'set', tap, 'netns', ns]);
  ip(['-n', ns], [`addr add ${TAP_IP}/24 dev ${tap}`, `link set ${tap} up`, 'link set lo up', ''].join('\n'));
}

export async function measureNet(env: CompareEnv, o: Options): Promise<Measurement[]> {
  const ms = o.netMs;
  const T = ms + 60_000;
  const size = String(PAYLOAD);
  const work = env.work;
  let ns: { name: string; remove(): void } | undefined;
  let netMissing = env.vmMissing;
  if (!netMissing) {
    try {
      ns = runNamespace();
    } catch (error) {
      netMissing = `no network namespace with a tap for the VM (needs root and iproute2): ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
    }
  }
  const inNs = (argv: string[]) => ['ip', 'netns', 'exec', ns!.name, ...argv];
  /** The guest streaming (`args`: its direction and port), `during` its far end; the guest's line with its count. */
  const streamVm = async (args: string, pattern: string, during: (clock: LineClock) => Promise<void>) => {
    const tap = tapName();
    const r = await runVm({
      kernel: env.virtioElf, memory: '64M', net: { tap, mac: GUEST_MAC },
      cmdline: `mode=net op=stream ${args} size=${PAYLOAD} timeout=30`,
    }, ['net: stream ready', pattern], T, { beforeStart: () => moveTap(tap, ns!.name), during: (_, clock) => during(clock) });
    return r.clock;
  };
  const rx = 'udp received';
  const tx = 'udp sent';

  /** Starts a receiver, waits until it listens, runs the sender against its port, returns both counts. */
  const hostReceives = async (receiver: string[], sender: (port: string) => Promise<LineClock>, what: string) => {
    const r = spawnWatched(receiver, ['udp listening', rx], T, `${what}: receiver`);
    try {
      const port = /port=(\d+)/.exec((await Promise.race([r.clock.wait('udp listening', 10_000, `${what}: receiver`), r.exited.then(() => { throw new Error(`${what}: the receiver ended at once`); })])).line)![1]!;
      const sent = await sender(port);
      await r.exited;
      return { received: parseReceived(r.clock.stamps.get(rx)?.line, `${what}: receiver`), sent };
    } finally {
      r.kill();
    }
  };
  const hostSends = (argv: (port: string) => string[], what: string) => async (port: string) => {
    const s = spawnWatched(argv(port), [tx], T, `${what}: sender`);
    await s.exited;
    return s.clock;
  };
  const sendArgv = (addr: string) => (port: string) => [work, 'udp-send', addr, port, size, String(ms)];

  type Run = () => Promise<{ received: Received; sent: LineClock }>;
  // Natively there is one path, loopback, the same both ways.
  const native: Run = () => hostReceives([work, 'udp-recv', '127.0.0.1', '0', size], hostSends(sendArgv('127.0.0.1'), 'native'), 'native');
  const runs: Record<Direction, Record<Subject, Run>> = {
    send: {
      native,
      container: () => hostReceives([work, 'udp-recv', '0.0.0.0', '0', size], async (port) =>
        (await runContainer(env, ['udp-send', GATEWAY, port, size, String(ms)], [tx], T, { net: 'veth' })).clock, 'container'),
      vm: () => hostReceives(inNs([work, 'udp-recv', '0.0.0.0', '0', size]), // the tap is not there yet
        (port) => streamVm(`dir=send ms=${ms} port=${port}`, 'net: stream sent', async () => {}), 'VM'),
    },
    receive: {
      native,
      container: async () => {
        let sent: LineClock | undefined;
        const run = await runContainer(env, ['udp-recv', '0.0.0.0', String(INSTANCE_PORT), size], ['udp listening', rx], T, {
          net: 'veth',
          during: async (c, clock) => {
            await clock.wait('udp listening', 10_000, 'container: receiver');
            if (!c.address) throw new Error('container: no address on the bridge');
            sent = await hostSends(sendArgv(c.address), 'container')(String(INSTANCE_PORT));
          },
        });
        if (!sent) throw new Error('container: the sender did not run');
        return { received: parseReceived(run.clock.stamps.get(rx)?.line, 'container: receiver'), sent };
      },
      vm: async () => {
        let sent: LineClock | undefined;
        const clock = await streamVm(`dir=recv port=${INSTANCE_PORT}`, 'net: stream received', async (guest) => {
          await guest.wait('net: stream ready', 30_000, 'VM');
          sent = await hostSends((port) => inNs(sendArgv(GUEST_IP)(port)), 'VM')(String(INSTANCE_PORT));
        });
        if (!sent) throw new Error('VM: the sender did not run');
        return { received: parseReceived(clock.stamps.get('net: stream received')?.line, 'VM'), sent };
      },
    },
  };

  const loopback = 'compare-work udp-send to compare-work udp-recv, both on the host, over loopback';
  const methods: Record<Direction, Record<Subject, string>> = {
    send: {
      native: loopback,
      container: `compare-work udp-send in a container (--net veth) to compare-work udp-recv on the host (the bridge, ${GATEWAY})`,
      vm: `virtio.elf mode=net op=stream dir=send (our own virtio-net driver) through a tap to compare-work udp-recv in the tap's network namespace`,
    },
    receive: {
      native: loopback,
      container: `compare-work udp-send on the host to compare-work udp-recv in a container (--net veth)`,
      vm: `compare-work udp-send in the tap's network namespace to virtio.elf mode=net op=stream dir=recv, which counts on the guest's TSC`,
    },
  };

  const out: Measurement[] = [];
  try {
    for (const dir of ['send', 'receive'] as const) {
      const pps = new Map<Subject, number[]>();
      const loss = new Map<Subject, number[]>();
      const figures = await rounds(env, `network ${dir}`, 'Mbit/s', o.netRuns, (['native', 'container', 'vm'] as const).map((subject) => ({
        subject,
        method: methods[dir][subject],
        missing: subject === 'container' ? env.containerMissing : subject === 'vm' ? netMissing : undefined,
        run: async () => {
          const { received, sent } = await runs[dir][subject]();
          const r = rates(received);
          const sentPackets = parseSent(sent.stamps.get(tx)?.line ?? sent.stamps.get('net: stream sent')?.line, `${subject}: sender`);
          pps.set(subject, [...(pps.get(subject) ?? []), r.pps]);
          loss.set(subject, [...(loss.get(subject) ?? []), sentPackets > 0 ? Math.max(0, 1 - received.packets / sentPackets) : 0]);
          return r.mbps;
        },
      })));
      const packets = alongside(figures, o.netRuns, (s) => pps.get(s) ?? [], () => ({ unit: 'packets/s' }));
      const lossNotes = figures.filter((f) => !f.na && loss.get(f.subject)?.length)
        .map((f) => `${f.subject === 'vm' ? 'VM' : f.subject}: ${(median(loss.get(f.subject)!.slice(-o.netRuns)) * 100).toFixed(1)}% of the datagrams sent did not arrive (median)`);
      const who = dir === 'send' ? 'the instance sends to the host' : 'the host sends to the instance';
      const base = `UDP datagrams of ${PAYLOAD} bytes (full 1514-byte frames) sent as fast as the sender can for ${ms / 1000} s; ${who}; the receiver counts from its first datagram to its last`;
      out.push(withRatios({
        id: `net-${dir}`, title: `Network ${dir} (UDP)`, unit: 'Mbit/s', higherIsBetter: true, figures,
        notes: [`Lost on the way: ${lossNotes.join('; ') || 'nothing measured'}.`],
        description: `${base}: payload Mbit/s (higher is better)${o.netRuns === o.runs ? '' : `; ${o.netRuns} runs each`}.`,
      }));
      out.push(withRatios({
        id: `net-${dir}-pps`, title: `Network ${dir}: packets`, unit: 'packets/s', higherIsBetter: true, figures: packets, notes: [],
        description: `The same runs in datagrams a second (higher is better).`,
      }));
    }
  } finally {
    ns?.remove();
  }
  return out;
}

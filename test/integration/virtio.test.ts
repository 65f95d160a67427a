// virtio devices on /dev/kvm, driven by the small drivers of guests/build/virtio.elf: block
// (written, then verified by a second VM on the same image and byte by byte on the host),
// entropy, console, a network frame each way through a tap, a UDP stream each way (the guest side
// of compare's network figures, against compare-work), and hostile queues.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Vm, type VmConfig } from 'tsvmm';
import { GUESTS, kvmMissingReason } from '../helpers/kvm.js';
import { parseReceived, parseSent } from '../../src/compare/net.js';
import { spawnWatched } from '../../src/compare/run.js';

const VIRTIO_ELF = path.join(GUESTS, 'virtio.elf');
const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-virtio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function image(name: string, size = 4 * 1024 * 1024): string {
  const file = path.join(dir, name);
  writeFileSync(file, '');
  truncateSync(file, size);
  return file;
}

async function run(cmdline: string, config: VmConfig = {}) {
  const vm = Vm.boot({ kernel: VIRTIO_ELF, memory: '64M', cmdline, ...config });
  const outcome = await vm.wait();
  return { outcome, output: vm.output, vm };
}

/** The byte the guest writes at offset i of sector s (guests/README.md, mode=blk). */
function pattern(seed: number, sector: number, i: number): number {
  return Number((BigInt(seed) * 2654435761n + BigInt(sector) * 40503n + BigInt(i) * 7n) & 0xffn);
}

describe.skipIf(kvmMissingReason)('virtio devices', () => {
  it('virtio-blk: sectors written by one VM are on the host file and read back by the next VM', async () => {
    const disk = image('disk.img');
    const write = await run('mode=blk op=write seed=7 start=3 sectors=16', { disks: [{ path: disk }] });
    expect(write.outcome.kind).toBe('shutdown');
    expect(write.output).toContain('blk: capacity=8192');
    expect(write.output).toContain('blk: id="disk.img"');
    expect(write.output).toContain('blk: wrote 16 sectors');
    expect(write.output).toContain('blk: flushed');

    const bytes = readFileSync(disk);
    for (const sector of [3, 10, 18]) {
      for (const i of [0, 1, 255, 511]) expect(bytes[sector * 512 + i], `sector ${sector} byte ${i}`).toBe(pattern(7, sector, i));
    }
    expect(bytes.subarray(0, 3 * 512).every((b) => b === 0)).toBe(true);
    expect(bytes.subarray(19 * 512, 20 * 512).every((b) => b === 0)).toBe(true);

    const verify = await run('mode=blk op=verify seed=7 start=3 sectors=16', { disks: [{ path: disk }] });
    expect(verify.output).toContain('blk: verified 16 sectors');
  });

  it.each([['indirect descriptors', 'indirect=1'], ['event index', 'eventidx=1'], ['both', 'indirect=1 eventidx=1']])('virtio-blk with %s', async (_name, flags) => {
    const disk = image(`disk-${flags.replace(/\W/g, '')}.img`);
    const write = await run(`mode=blk op=write seed=3 start=0 sectors=40 ${flags}`, { disks: [{ path: disk }] });
    expect(write.output).toContain('blk: wrote 40 sectors');
    const verify = await run(`mode=blk op=verify seed=3 start=0 sectors=40 ${flags}`, { disks: [{ path: disk }] });
    expect(verify.output).toContain('blk: verified 40 sectors');
  });

  it('several disks: each is its own device, and a write to the second leaves the first alone', async () => {
    const first = image('first.img');
    const second = image('second.img', 2 * 1024 * 1024);
    const { output } = await run('mode=blk op=write unit=1 seed=11 start=5 sectors=8', { disks: [{ path: first }, { path: second }] });
    expect(output.match(/virtio: found blk at 0x[0-9a-f]+ irq \d+/g)).toHaveLength(2);
    expect(output).toContain('blk: capacity=4096'); // the second disk: 2 MiB
    expect(output).toContain('blk: id="second.img"');
    expect(output).toContain('blk: wrote 8 sectors');
    expect(readFileSync(second)[5 * 512 + 3]).toBe(pattern(11, 5, 3));
    expect(readFileSync(first).every((b) => b === 0)).toBe(true);
  });

  it('virtio-blk read-only: writes fail with an I/O error status and the file is untouched', async () => {
    const disk = image('ro.img');
    const { output } = await run('mode=blk op=write seed=1 start=0 sectors=4', { disks: [{ path: disk, readOnly: true }] });
    expect(output).toMatch(/blk: write status=1/);
    expect(readFileSync(disk).every((b) => b === 0)).toBe(true);
  });

  it('virtio-rng: fills buffers from the host CSPRNG', async () => {
    const { output } = await run('mode=rng bytes=64', { rng: true });
    expect(output.match(/rng: got 64 bytes/g)).toHaveLength(2);
    expect(output).toContain('rng: distinct');
    expect(output).toMatch(/rng: first=(?!0{32})[0-9a-f]{32}/);
  });

  it('virtio-console: output reaches the console and typed input reaches the guest', async () => {
    const vm = Vm.boot({ kernel: VIRTIO_ELF, memory: '64M', cmdline: 'mode=console', console: 'virtio' });
    await vm.waitForOutput('console: hello from hvc0');
    vm.write('typed into hvc0\r');
    await vm.wait();
    expect(vm.output).toContain('console: rx "typed into hvc0"');
  });

  it.each(['loop', 'oob', 'badnext'])('a hostile queue (%s) puts the device in NEEDS_RESET, and it recovers after a reset', async (kind) => {
    const disk = image(`hostile-${kind}.img`);
    const logs: string[] = [];
    const vm = Vm.boot({ kernel: VIRTIO_ELF, memory: '64M', cmdline: `mode=hostile case=${kind}`, disks: [{ path: disk }] });
    vm.on('log', (line) => logs.push(line));
    expect((await vm.wait()).kind).toBe('shutdown');
    expect(vm.output).toContain('hostile: device needs reset');
    expect(vm.output).toContain('hostile: recovered');
    expect(logs.filter((l) => /needs reset/.test(l))).toHaveLength(1);
  });
});

// A tap needs a network namespace (to keep the host's network untouched) and root.
const netMissingReason = kvmMissingReason
  ?? (process.getuid?.() !== 0 ? 'not root: cannot create a network namespace and a tap; virtio-net test skipped' : undefined)
  ?? (spawnSync('ip', ['-V']).status !== 0 ? 'iproute2 (`ip`) is missing; virtio-net test skipped' : undefined);

describe.skipIf(netMissingReason)('virtio-net through a tap in a network namespace', () => {
  it('says plainly when the tap cannot be used: no CAP_NET_ADMIN', () => {
    // Root without CAP_NET_ADMIN in its bounding set is refused the tap, as an ordinary user is.
    const r = spawnSync('setpriv', ['--bounding-set', '-net_admin', process.execPath, 'bin/tsvmm.js', 'run', '--net', 'tap=tsvmm-nocap'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('tsvmm: error: --net tap=tsvmm-nocap: permission denied (creating or attaching a tap needs CAP_NET_ADMIN, or a tap made for your user with `ip tuntap add`)');
  });

  const ns = `tsvmm-test-${process.pid}`;
  const ip = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, 'ip', ...args]);
  afterAll(() => spawnSync('ip', ['netns', 'del', ns]));

  it('sends a UDP datagram to the host side and receives one back', async () => {
    execFileSync('ip', ['netns', 'add', ns]);
    ip('tuntap', 'add', 'tsvmm0', 'mode', 'tap');
    ip('addr', 'add', '10.0.2.2/24', 'dev', 'tsvmm0');
    ip('link', 'set', 'tsvmm0', 'up');
    ip('link', 'set', 'lo', 'up');
    // The VMM runs inside the namespace (that is where the tap is); so does the peer below.
    const script = `
      const dgram = require('node:dgram');
      const s = dgram.createSocket('udp4');
      s.on('message', (msg, from) => {
        console.log('host: rx ' + JSON.stringify(msg.toString()) + ' from ' + from.address + ':' + from.port);
        s.send('hello from the host', from.port, from.address, () => setTimeout(() => process.exit(0), 200));
      });
      s.bind(5555, '10.0.2.2', () => console.log('host: listening'));
      setTimeout(() => { console.log('host: timeout'); process.exit(1); }, 30000);`;
    const peer = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', `
      const { spawn } = require('node:child_process');
      const peer = spawn(process.execPath, ['-e', ${JSON.stringify(script)}], { stdio: ['ignore', 'inherit', 'inherit'] });
      const vm = spawn(process.execPath, ['bin/tsvmm.js', 'run', '-q', '--kernel', ${JSON.stringify(VIRTIO_ELF)}, '--mem', '64M',
        '--net', 'tap=tsvmm0,mac=52:54:00:12:34:56', '--cmdline', 'mode=net ip=10.0.2.15 peer=10.0.2.2 port=5555'],
        { stdio: ['ignore', 'inherit', 'inherit'] });
      vm.on('exit', (code) => { console.log('vm: exit ' + code); peer.kill(); });`], { encoding: 'utf8', timeout: 60_000, cwd: process.cwd() });
    const out = peer.stdout;
    expect(out, peer.stderr).toContain('net: mac=52:54:00:12:34:56');
    expect(out).toContain('host: rx "hello from tsvmm guest" from 10.0.2.15:5555');
    expect(out).toContain('net: rx "hello from the host" from 10.0.2.2:5555');
    expect(out).toContain('vm: exit 0');
  });

  it('streams full-size UDP datagrams to the host and from it (op=stream), counted by the receiver', async () => {
    // The far end is compare's own (src/compare/workload.c), in the namespace of the tap.
    const work = path.join(dir, 'compare-work');
    execFileSync('gcc', ['-static', '-O2', '-o', work, 'src/compare/workload.c']);
    const inNs = (argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
    const vm = (cmdline: string) => inNs([process.execPath, 'bin/tsvmm.js', 'run', '-q', '--kernel', VIRTIO_ELF, '--mem', '64M',
      '--net', 'tap=tsvmm0,mac=52:54:00:12:34:56', '--cmdline', `mode=net op=stream ${cmdline}`]);

    const rx = spawnWatched(inNs([work, 'udp-recv', '10.0.2.2', '5601', '1472']), ['udp listening', 'udp received'], 60_000, 'receiver');
    await rx.clock.wait('udp listening', 10_000, 'receiver');
    const sender = spawnWatched(vm('dir=send ms=300 port=5601'), ['net: stream start', 'net: stream sent'], 60_000, 'VM');
    await sender.exited;
    await rx.exited;
    const sent = parseSent(sender.clock.stamps.get('net: stream sent')?.line, 'VM');
    const received = parseReceived(rx.clock.stamps.get('udp received')?.line, 'receiver');
    expect(sent).toBeGreaterThan(100);
    expect(received.packets).toBeGreaterThan(sent * 0.9);
    expect(received.packets).toBeLessThanOrEqual(sent);
    expect(received.seconds).toBeGreaterThan(0.1);

    const guest = spawnWatched(vm('dir=recv port=5602'), ['net: stream ready', 'net: stream received'], 60_000, 'VM');
    await guest.clock.wait('net: stream ready', 30_000, 'VM');
    const host = spawnWatched(inNs([work, 'udp-send', '10.0.2.15', '5602', '1472', '300']), ['udp sent'], 60_000, 'sender');
    await host.exited;
    await guest.exited;
    const got = parseReceived(guest.clock.stamps.get('net: stream received')?.line, 'VM');
    expect(got.packets).toBeGreaterThan(100);
    expect(got.packets).toBeLessThanOrEqual(parseSent(host.clock.stamps.get('udp sent')?.line, 'sender'));
  }, 120_000);

  it('says what is wrong with a stream\'s arguments', async () => {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, 'bin/tsvmm.js', 'run', '-q', '--kernel', VIRTIO_ELF, '--mem', '64M',
      '--net', 'tap=tsvmm0', '--cmdline', 'mode=net op=stream dir=sideways'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout, r.stderr).toContain('net: stream: dir=send or dir=recv');
  }, 60_000);
});

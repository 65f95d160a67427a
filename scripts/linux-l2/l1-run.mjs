// Runs inside the L1 guest (scripts/linux-l2/l1-init.sh): boots Linux on tsvmm (L2) once per
// scenario, drives the L2 shell through the VMM's console as a user would, and reports one JSON
// event per scenario on /dev/ttyS1, which the host keeps in a file: the checks with what the L2
// printed for each, the L2's whole console, and the VMM's outcome. Every wait is bounded; a
// scenario that fails says at which step and with what output.
//
// usage: node scripts/linux-l2/l1-run.mjs SCENARIO[,SCENARIO...]   (see SCENARIOS below)

import { spawn, spawnSync } from 'node:child_process';
import { openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { clearTimeout, setInterval, setTimeout } from 'node:timers';

const TSVMM = ['bin/tsvmm.js'];
const KERNEL = '/l2/vmlinuz';
const INITRD = '/l2/initramfs.cpio.gz';
const INITRD_DEVICES = '/l2/initramfs-devices.cpio.gz';
const CMDLINE = 'console=ttyS0 reboot=k panic=1';
const PROMPT = /\(initramfs\) [^\n]*# /;
const BOOT_TIMEOUT_MS = Number(process.env.L2_BOOT_TIMEOUT_S ?? 420) * 1000;
const STEP_TIMEOUT_MS = 90_000;

const events = openSync('/dev/ttyS1', 'w');
const emit = (event) => writeSync(events, `${JSON.stringify(event)}\n`);
const uptime = () => Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
setInterval(() => emit({ event: 'heartbeat', uptime: uptime() }), 10_000).unref();

class StepError extends Error {}

/** One VMM process booting L2, driven through its console (stdin/stdout). */
class L2 {
  output = '';
  stderr = '';
  #marker = 0;
  #waiters = new Set();

  constructor(argv, { cwd = '/tsvmm', env } = {}) {
    this.argv = argv;
    this.child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: env && { ...process.env, ...env } });
    this.child.stdout.on('data', (d) => { const s = d.toString('latin1'); this.output += s; process.stdout.write(s); this.#poke(); });
    this.child.stderr.on('data', (d) => { this.stderr += d.toString('latin1'); this.#poke(); });
    this.child.stdin.on('error', () => {});
    this.exitCode = undefined;
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      this.exitCode = { code, signal };
      this.#poke();
      resolve(this.exitCode);
    }));
  }

  #poke() { for (const w of this.#waiters) w(); }

  /** Waits until `test(output)` holds; fails after `timeoutMs` or if the VMM exits first. */
  waitUntil(what, test, timeoutMs = STEP_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = test(this.output);
        if (value) return done(() => resolve(value));
        if (this.exitCode) return done(() => reject(new StepError(`${what}: the VMM exited (${JSON.stringify(this.exitCode)}) first`)));
        return undefined;
      };
      const timer = setTimeout(() => done(() => reject(new StepError(`${what}: nothing after ${timeoutMs / 1000} s`))), timeoutMs);
      const done = (f) => { clearTimeout(timer); this.#waiters.delete(check); f(); };
      this.#waiters.add(check);
      check();
    });
  }

  waitFor(what, pattern, timeoutMs) {
    return this.waitUntil(what, (out) => pattern.exec(out), timeoutMs);
  }

  type(text) { this.child.stdin.write(text); }

  /**
   * Types a shell command; resolves with what it printed and its exit status. The output is
   * found between two markers the shell computes ($((n+0))), which its echo of the typed line
   * (wrapped and redrawn by the line editor) cannot contain.
   */
  async sh(command, timeoutMs = STEP_TIMEOUT_MS) {
    const n = ++this.#marker;
    const from = this.output.length;
    this.type(`echo "@@S$((${n}+0))@@"; ${command}; echo "@@E$((${n}+0))-$?@@"\r`);
    const pattern = new RegExp(`@@S${n}@@\\r*\\n([^]*?)@@E${n}-(\\d+)@@`);
    const m = await this.waitUntil(`\`${command}\``, (out) => pattern.exec(out.slice(from)), timeoutMs);
    return { text: m[1].replace(/\r/g, ''), status: Number(m[2]) };
  }

  async outcome(timeoutMs = STEP_TIMEOUT_MS) {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    const json = this.stderr.split('\n').reverse().find((l) => l.startsWith('{"outcome"'));
    return { ...r, summary: json ? JSON.parse(json) : undefined };
  }

  kill() { if (!this.exitCode) this.child.kill('SIGKILL'); }
}

const tsvmmRun = (args, env) => new L2(['node', ...TSVMM, 'run', '--kernel', KERNEL, '--mem', '256M', '--json', ...args], { env });
/** A tsvmm command (snapshot, stop, ...) to its end, while the VMs' consoles keep flowing. */
const cli = (...args) => command(['node', ...TSVMM, ...args]);
/** A command to its end, with its stdout and stderr together. */
const command = (argv) => new Promise((resolve) => {
  const child = spawn(argv[0], argv.slice(1), { cwd: '/tsvmm', stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
  child.on('close', (status) => { clearTimeout(timer); resolve({ status, out: out.trim() }); });
});

/** Collects checks: each has a name, ok, and what L2 printed for it. */
class Checks {
  list = [];
  add(name, ok, detail = '') { this.list.push({ name, ok: Boolean(ok), detail: String(detail).slice(0, 2000) }); return ok; }
  get ok() { return this.list.length > 0 && this.list.every((c) => c.ok); }
}

/** Warnings and errors from the kernel log, without timestamps, numbers or addresses. */
async function kernelWarnings(l2) {
  const { text } = await l2.sh("dmesg -r | grep -E '^<[0-4]>'");
  return [...new Set(text.split('\n').filter(Boolean).map(normalizeLogLine))].sort();
}
const normalizeLogLine = (line) => line.replace(/^<\d>(\[[ \d.]+\] )?/, '').replace(/0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+/gi, '#').trim();

async function bootChecks(c, l2, { cpus, quiet }) {
  await l2.waitFor('L2 shell prompt', PROMPT, BOOT_TIMEOUT_MS);
  c.add('prompt', true, `after ${l2.bootSeconds()} s`);
  if (!quiet) c.add('banner', /Linux version \d/.test(l2.output), l2.output.match(/Linux version .*/)?.[0]);
  c.add(`${cpus} CPU(s) in the greeting`, l2.output.includes(`${cpus} CPU(s)`), l2.output.match(/tsvmm initramfs: Linux .*/)?.[0]);
  const online = await l2.sh('cat /sys/devices/system/cpu/online');
  c.add('cpus online', online.text.trim() === (cpus === 1 ? '0' : `0-${cpus - 1}`), online.text);
}

/** The container tests' busybox root, copied into L1 by build.sh. */
const CONTAINER_ROOTFS = '/containers/rootfs';

/**
 * L1's root is its initramfs, which pivot_root cannot leave (EINVAL), so the container scenario
 * runs tsvmm chrooted in a tmpfs that holds binds of L1's directories, as switch_root would leave
 * a system.
 */
const NEWROOT = '/newroot';
const ctrCli = (...args) => command(['chroot', NEWROOT, 'node', '/tsvmm/bin/tsvmm.js', ...args]);
/** `tsvmm container run` with these arguments to its end. */
const containerRun = (args) => ctrCli('container', 'run', '--rootfs', CONTAINER_ROOTFS, ...args);

/** The cgroup v2 directory of a process, from /proc/PID/cgroup ("0::/path"). */
const v2CgroupOf = (pid) => `/sys/fs/cgroup${readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::')).slice(3)}`;
const readCgroup = (dir, file) => { try { return readFileSync(`${dir}/${file}`, 'utf8').trim(); } catch (e) { return `(${e.code})`; } };

async function containerChecks(c) {
  const mount = spawnSync('sh', ['-c', `grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 cgroup2 /sys/fs/cgroup
    mkdir -p ${NEWROOT} && mount -t tmpfs tmpfs ${NEWROOT}
    for d in bin sbin usr lib lib64 etc root tsvmm containers proc sys dev run tmp; do
      [ -e /$d ] || continue; mkdir -p ${NEWROOT}/$d; mount --rbind /$d ${NEWROOT}/$d
    done
    cat /sys/fs/cgroup/cgroup.controllers`], { encoding: 'utf8' });
  if (!c.add('cgroup2 with memory, cpu and pids', ['memory', 'cpu', 'pids'].every((k) => mount.stdout.split(/\s+/).includes(k)), mount.stdout + mount.stderr)) return;

  const limits = await containerRun(['--mem', '32M', '--cpus', '0.5', '--pids', '20', '--', 'sh', '-c', 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max']);
  c.add('limits in the container\'s cgroup files', limits.status === 0 && limits.out === `${32 << 20}\n50000 100000\n20`, JSON.stringify(limits));

  const oom = await containerRun(['--mem', '16M', '--name', 'v2-oom', '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
  c.add('the OOM killer at --mem, reported with 137', oom.status === 137 && /killed by the OOM killer: out of memory \(limit 16 MiB\)/.test(oom.out), JSON.stringify(oom));

  // (ash gives up on the script at the first fork that fails)
  const pids = await containerRun(['--pids', '8', '--', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done']);
  c.add('a fork past --pids fails', pids.status !== 0 && /can't fork: Resource temporarily unavailable/.test(pids.out), JSON.stringify(pids));

  const started = await ctrCli('container', 'run', '--rootfs', CONTAINER_ROOTFS, '--name', 'v2-bg', '--detach', '--mem', '32M', '--', 'sleep', '300');
  if (!c.add('a detached container', started.status === 0, JSON.stringify(started))) return;
  const ps = await ctrCli('ps', '--json');
  const row = JSON.parse(ps.out.slice(ps.out.indexOf('['))).find((r) => r.name === 'v2-bg');
  if (!c.add('ps lists it', row?.pid > 0, ps.out)) return;
  const dir = v2CgroupOf(row.pid);
  c.add('its cgroup is tsvmm/NAME-KEY', /^\/sys\/fs\/cgroup\/tsvmm\/v2-bg-[0-9a-f]{8}$/.test(dir), dir);
  const update = await ctrCli('update', 'v2-bg', '--mem', '64M', '--cpus', '1.5', '--pids', '50');
  c.add('update writes memory.max, cpu.max and pids.max', update.status === 0 && readCgroup(dir, 'memory.max') === String(64 << 20)
    && readCgroup(dir, 'cpu.max') === '150000 100000' && readCgroup(dir, 'pids.max') === '50', `${update.out}; ${readCgroup(dir, 'memory.max')} / ${readCgroup(dir, 'cpu.max')} / ${readCgroup(dir, 'pids.max')}`);
  const paused = await ctrCli('pause', 'v2-bg');
  c.add('pause freezes it (cgroup.freeze, cgroup.events frozen 1)', paused.status === 0 && readCgroup(dir, 'cgroup.freeze') === '1' && /frozen 1/.test(readCgroup(dir, 'cgroup.events')), `${paused.out}; ${readCgroup(dir, 'cgroup.events')}`);
  const resumed = await ctrCli('resume', 'v2-bg');
  c.add('resume thaws it', resumed.status === 0 && /frozen 0/.test(readCgroup(dir, 'cgroup.events')), `${resumed.out}; ${readCgroup(dir, 'cgroup.events')}`);
  const stopped = await ctrCli('stop', 'v2-bg', '--timeout', '0');
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    gone = readCgroup(dir, 'cgroup.procs').startsWith('(ENOENT)');
    if (!gone) await new Promise((r) => setTimeout(r, 200));
  }
  c.add('stop removes its cgroup', stopped.status === 0 && gone, `${stopped.out}; ${dir}: ${readCgroup(dir, 'cgroup.procs')}`);
}

const SCENARIOS = {
  /**
   * Containers on cgroup v2 with its controllers, which the development hosts (hybrid, an empty
   * unified hierarchy) lack: L1's kernel, with cgroup2 mounted alone at /sys/fs/cgroup. The limits
   * as the cgroup files and the container see them, the OOM killer, the pids limit, update,
   * pause (cgroup.freeze) and cleanup. No L2: tsvmm's container mode on L1's kernel.
   */
  async containers(c) {
    try {
      await containerChecks(c);
    } finally {
      // Leave L1 as the other scenarios (and a caller's --l1-script) expect it.
      spawnSync('sh', ['-c', `umount -l ${NEWROOT}; umount /sys/fs/cgroup`]);
    }
  },

  /** 1 vCPU, the whole banner: CPU features Linux sees, its warnings, ACPI power-off. */
  async boot1(c) {
    const l2 = track(tsvmmRun(['--initrd', INITRD, '--cmdline', CMDLINE]));
    await bootChecks(c, l2, { cpus: 1, quiet: false });
    const cpu = await l2.sh('grep -m1 "model name" /proc/cpuinfo; grep -c -w tsc_deadline_timer /proc/cpuinfo');
    c.add('brand string', /model name\s*:\s*\S/.test(cpu.text) && !/: Hammer/.test(cpu.text), cpu.text);
    c.add('TSC-deadline timer', /^1$/m.test(cpu.text), cpu.text);
    c.add('LAPIC timer verified', !/APIC timer disabled/.test(l2.output), l2.output.match(/.*APIC timer.*/)?.[0] ?? 'no complaint');
    c.add('i8042 probed without warnings', !/i8042: (Warning|Failed)/.test(l2.output), l2.output.match(/.*i8042.*/g)?.join('\n'));
    c.warnings = await kernelWarnings(l2);
    l2.type('poweroff -f\r');
    const out = await l2.outcome();
    c.add('power-off outcome', out.code === 0 && out.summary?.outcome?.reason === 'acpi-poweroff', JSON.stringify(out));
  },

  /** 2 vCPUs; `reboot -f` ends the VM (reboot=k: the i8042 reset line). */
  async smp2(c) {
    const l2 = track(tsvmmRun(['--initrd', INITRD, '--cpus', '2', '--cmdline', `${CMDLINE} quiet`]));
    await bootChecks(c, l2, { cpus: 2, quiet: true });
    l2.type('reboot -f\r');
    const out = await l2.outcome();
    c.add('reboot outcome', out.code === 0 && out.summary?.outcome?.reason === 'i8042-reset', JSON.stringify(out));
  },

  /** 4 vCPUs, on a pseudo-terminal (script(1)); Ctrl-A X quits. */
  async smp4(c) {
    const command = ['node', ...TSVMM, 'run', '--kernel', KERNEL, '--mem', '256M', '--initrd', INITRD, '--cpus', '4', '--cmdline', `'${CMDLINE} quiet'`].join(' ');
    const l2 = track(new L2(['script', '-q', '-e', '-c', command, '/dev/null']));
    await bootChecks(c, l2, { cpus: 4, quiet: true });
    l2.type('\x01x');
    const out = await l2.outcome();
    c.add('Ctrl-A X quits', out.code === 0 && /you quit|stopped/i.test(l2.output.slice(-400)), `${JSON.stringify(out.code)} ${l2.output.slice(-200)}`);
  },

  /** virtio-blk (read, write, read-only), virtio-net (ping, TCP both ways), virtio-rng, and a shell on hvc0. */
  async devices(c) {
    const data = '/tmp/l2-data.img';
    const ro = '/tmp/l2-ro.img';
    const host = Buffer.alloc(1 << 20);
    host.write('HOST-WROTE-THIS-FOR-L2', 0, 'latin1');
    writeFileSync(data, host);
    writeFileSync(ro, host);
    const l2 = track(tsvmmRun(['--initrd', INITRD_DEVICES, '--cmdline', `${CMDLINE} quiet`, '--disk', data, '--disk', `${ro},ro`,
      '--net', 'tap=l2tap0,mac=52:54:00:12:34:56', '--rng', '--console', 'virtio']));
    await l2.waitFor('L2 shell prompt', PROMPT, BOOT_TIMEOUT_MS);
    await l2.waitFor('hvc0 shell', /hvc0 # /, 30_000);
    const tty = await l2.sh('tty');
    c.add('shell on hvc0', tty.text.trim() === '/dev/hvc0', tty.text);
    const cmdline = await l2.sh('cat /proc/cmdline');
    c.add('a bzImage gets no virtio_mmio.device= (the DSDT alone)', !cmdline.text.includes('virtio_mmio'), cmdline.text);
    const found = await l2.sh('cat /sys/bus/virtio/devices/*/device | sort | tr "\\n" " "; cat /proc/partitions');
    c.add('virtio devices found through ACPI', /0x0001 0x0002 0x0002 0x0003 0x0004/.test(found.text) && /vda/.test(found.text) && /vdb/.test(found.text), found.text);
    const read = await l2.sh('head -c 22 /dev/vda; echo');
    c.add('virtio-blk reads what the host wrote', read.text.includes('HOST-WROTE-THIS-FOR-L2'), read.text);
    const write = await l2.sh('printf L2-WROTE-THIS | dd of=/dev/vda bs=512 seek=1 conv=notrunc,fsync 2>&1; sync');
    c.add('virtio-blk write', write.status === 0, write.text);
    const refused = await l2.sh('echo x | dd of=/dev/vdb bs=512 seek=1 conv=notrunc,fsync 2>&1');
    c.add('read-only disk refuses writes', refused.status !== 0, refused.text);

    // The L1 end of the tap: tsvmm created it; give it an address.
    spawnSync('ip', ['addr', 'add', '10.44.0.1/24', 'dev', 'l2tap0']);
    spawnSync('ip', ['link', 'set', 'l2tap0', 'up']);
    const up = await l2.sh('ip addr add 10.44.0.2/24 dev eth0 && ip link set eth0 up && ping -c 3 -W 5 10.44.0.1');
    c.add('virtio-net ping', up.status === 0 && / 0% packet loss/.test(up.text), up.text);
    const received = new Promise((resolve) => {
      const server = net.createServer((s) => { let got = ''; s.on('data', (d) => { got += d; }); s.on('end', () => { server.close(); resolve(got); }); });
      server.listen(5001, '10.44.0.1');
      setTimeout(() => { server.close(); resolve('(nothing within 60 s)'); }, 60_000).unref();
    });
    const sent = await l2.sh('seq 1 20000 | nc 10.44.0.1 5001');
    const got = await received;
    const expected = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');
    c.add('TCP from L2 to L1', sent.status === 0 && got === expected, `${got.length} of ${expected.length} bytes`);
    l2.type('nc -l -p 5002 > /tmp/from-l1 &\r');
    await new Promise((r) => setTimeout(r, 2000));
    const payload = 'L1-TO-L2-'.repeat(5000);
    await new Promise((resolve) => {
      const s = net.connect(5002, '10.44.0.2', () => s.end(payload));
      s.on('close', resolve); s.on('error', resolve);
    });
    const back = await l2.sh('sleep 1; wc -c < /tmp/from-l1; head -c 18 /tmp/from-l1; echo');
    c.add('TCP from L1 to L2', back.text.includes(String(payload.length)) && back.text.includes('L1-TO-L2-L1-TO-L2-'), back.text);

    const rng = await l2.sh('cat /sys/class/misc/hw_random/rng_current; head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n"; echo');
    c.add('virtio-rng gives bytes', /virtio_rng/.test(rng.text) && /[0-9a-f]{64}/.test(rng.text), rng.text);
    c.warnings = await kernelWarnings(l2);
    l2.type('poweroff -f\r');
    const out = await l2.outcome();
    c.add('power-off outcome', out.summary?.outcome?.reason === 'acpi-poweroff', JSON.stringify(out));
    const after = readFileSync(data);
    c.add('the host sees what L2 wrote', after.toString('latin1', 512, 525) === 'L2-WROTE-THIS', JSON.stringify(after.toString('latin1', 512, 530)));
    c.add('the read-only image is untouched', readFileSync(ro).equals(host));
  },

  /** Snapshot a running L2, restore it in a new process, a diff snapshot on top, pause/resume. */
  async snapshot(c) {
    const full = '/tmp/l2.snap';
    const diff = '/tmp/l2-diff.snap';
    const first = track(tsvmmRun(['--initrd', INITRD, '--cmdline', `${CMDLINE} quiet`, '--name', 'l2snap']));
    await first.waitFor('L2 shell prompt', PROMPT, BOOT_TIMEOUT_MS);
    const before = await first.sh('MARK=set-before-snapshot; cut -d" " -f1 /proc/uptime');
    const taken = await cli('snapshot', 'l2snap', full);
    c.add('snapshot of the running VM', taken.status === 0, taken.out);
    c.add('the original goes on', (await first.sh('echo "go-$((40 + 2))"')).text.includes('go-42'));
    const stopped = await cli('stop', 'l2snap');
    c.add('stop', stopped.status === 0 && (await first.outcome()).code !== null, stopped.out);

    const second = track(new L2(['node', ...TSVMM, 'restore', full, '--name', 'l2rest', '--json']));
    const restored = await second.sh('echo "mark=$MARK"; cut -d" " -f1 /proc/uptime');
    c.add('the restored shell answers with its state', restored.text.includes('mark=set-before-snapshot'), restored.text);
    const [t0, t1] = [parseFloat(before.text), parseFloat(restored.text.split('\n')[1] ?? '')];
    const later = await second.sh('sleep 2; cut -d" " -f1 /proc/uptime');
    c.add('its clock moves on', t1 >= t0 && parseFloat(later.text) >= t1 + 1.5, `${t0} -> ${t1} -> ${later.text.trim()}`);

    c.add('pause', (await cli('pause', 'l2rest')).status === 0);
    const from = second.output.length;
    second.type('echo "after-$((2 + 3))"\r');
    await new Promise((r) => setTimeout(r, 4000));
    const whilePaused = second.output.slice(from);
    c.add('no output while paused', !whilePaused.includes('after-5'), JSON.stringify(whilePaused));
    c.add('resume', (await cli('resume', 'l2rest')).status === 0);
    await second.waitUntil('the answer after resume', (out) => out.slice(from).includes('after-5'));
    c.add('answers after resume', true);

    await second.sh('echo only-in-the-diff > /tmp/d; MARK2=diff-state');
    const diffTaken = await cli('snapshot', 'l2rest', diff, '--diff');
    c.add('diff snapshot', diffTaken.status === 0, diffTaken.out);
    await cli('stop', 'l2rest');
    await second.outcome();
    const third = track(new L2(['node', ...TSVMM, 'restore', diff, '--json']));
    const fromDiff = await third.sh('cat /tmp/d; echo "mark2=$MARK2 mark=$MARK"');
    c.add('the diff restores on top of the full snapshot', /only-in-the-diff/.test(fromDiff.text) && /mark2=diff-state mark=set-before-snapshot/.test(fromDiff.text), fromDiff.text);
    third.type('poweroff -f\r');
    const out = await third.outcome();
    c.add('power-off after restore', out.summary?.outcome?.reason === 'acpi-poweroff', JSON.stringify(out));
  },

  /** QEMU/KVM in the same L1, booting the same L2: the reference for warnings and timing. */
  async qemu(c) {
    const l2 = track(qemuRun(CMDLINE));
    await l2.waitFor('L2 shell prompt', PROMPT, BOOT_TIMEOUT_MS);
    c.add('prompt', true, `after ${l2.bootSeconds()} s`);
    c.warnings = await kernelWarnings(l2);
    l2.type('poweroff -f\r');
    const out = await l2.outcome();
    c.add('power-off', out.code === 0, JSON.stringify(out));
  },

  /**
   * A script of the caller's (run.mjs --l1-script), run in L1 as root with the files --l1-file
   * added: other tests use L1 as a Linux machine of known kernel (cgroup v2, namespaces, KVM).
   * It passes when the script exits 0; its output is the report.
   */
  async script(c) {
    const timeoutMs = Number(process.env.L1_SCRIPT_TIMEOUT_S || 600) * 1000;
    const run = track(new L2(['sh', '/l1/script.sh'], { cwd: '/root' }));
    const out = await run.outcome(timeoutMs);
    c.add('the script exits 0', out.code === 0, `exit ${JSON.stringify(out.code ?? out.signal)}; last output: ${run.output.slice(-1500)}${run.stderr.slice(-1500)}`);
  },

  /**
   * VMM start to L2 shell prompt, tsvmm against QEMU/KVM, with and without `quiet`; the order
   * alternates from round to round (bench/linux-l2.mjs reports the ratios).
   */
  async bench(c) {
    c.timings = [];
    const rounds = Number(process.env.L2_BENCH_ROUNDS ?? 3);
    for (let round = 0; round < rounds; round++) {
      for (const quiet of [true, false]) {
        const cmdline = quiet ? `${CMDLINE} quiet` : CMDLINE;
        const vmms = round % 2 ? ['qemu', 'tsvmm'] : ['tsvmm', 'qemu'];
        for (const vmm of vmms) {
          // tsvmm says when its start-up phases end (src/meta/startup-trace.ts): where its share goes.
          const l2 = track(vmm === 'qemu' ? qemuRun(cmdline) : tsvmmRun(['--initrd', INITRD, '--cmdline', cmdline, '--quiet'], { TSVMM_STARTUP_TRACE: '1' }));
          await l2.waitFor('L2 shell prompt', PROMPT, BOOT_TIMEOUT_MS);
          const seconds = Number(l2.bootSeconds());
          l2.type('poweroff -f\r');
          const out = await l2.outcome();
          c.timings.push({ round, vmm, quiet, seconds, ...(vmm === 'tsvmm' && { phases: l2.startupPhases() }) });
          c.add(`${vmm}${quiet ? ' quiet' : ''} round ${round + 1}`, out.code === 0, `${seconds} s`);
          l2.output = ''; // keep the report small: the timings are what this scenario is for
        }
      }
    }
  },
};

const qemuRun = (cmdline) => new L2(['qemu-system-x86_64', '-accel', 'kvm', '-cpu', 'host', '-m', '256M', '-smp', '1', '-nodefaults',
  '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-kernel', KERNEL, '-initrd', INITRD, '-append', cmdline], { cwd: '/' });

let current;
function track(l2) {
  const started = performance.now();
  const [seconds, nanoseconds] = process.hrtime();
  const startedMono = seconds * 1e3 + nanoseconds / 1e6; // TSVMM_STARTUP_TRACE's clock
  l2.bootSeconds = () => ((performance.now() - started) / 1000).toFixed(1);
  /** Seconds from the spawn to the end of each start-up phase tsvmm reported. */
  l2.startupPhases = () => Object.fromEntries([...l2.stderr.matchAll(/^tsvmm-startup (\S+) ([\d.]+)$/gm)]
    .map(([, phase, ms]) => [phase, Number(((Number(ms) - startedMono) / 1000).toFixed(2))]));
  current.vmms.push(l2);
  return l2;
}

const wanted = (process.argv[2] ?? '').split(',').filter(Boolean);

/** Runs one scenario to its result: the checks, its VMMs' output, how long it took. */
async function attempt(name, scenario) {
  const c = new Checks();
  current = { vmms: [] };
  const started = performance.now();
  let error;
  if (!scenario) error = `unknown scenario (known: ${Object.keys(SCENARIOS).join(', ')})`;
  else {
    try {
      await scenario(c);
    } catch (e) {
      error = e instanceof StepError ? e.message : String(e?.stack ?? e);
    }
  }
  for (const l2 of current.vmms) l2.kill();
  const vmm = current.vmms.map((l2) => ({ argv: l2.argv.join(' '), output: l2.output, stderr: l2.stderr.slice(-4000) }));
  return {
    ok: !error && c.ok, error, checks: c.list, warnings: c.warnings, timings: c.timings,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)), vmm,
  };
}

/**
 * L1's KVM trace (tracefs), kept running: when an L2 crashes, the exits around KVM's SHUTDOWN say
 * what L2 was doing, which tsvmm cannot (KVM on AMD resets a vCPU whose guest shut down): the guest
 * RIP of the exit, and in intr_info the event being delivered (EXITINTINFO: valid, type, vector)
 * with its error code.
 */
const TRACEFS = '/sys/kernel/tracing';
spawnSync('sh', ['-c', `mountpoint -q ${TRACEFS} || mount -t tracefs nodev ${TRACEFS}; echo 4096 > ${TRACEFS}/buffer_size_kb
  for e in kvm_exit kvm_inj_exception kvm_inj_virq kvm_userspace_exit; do echo 1 > ${TRACEFS}/events/kvm/$e/enable; done
  echo 1 > ${TRACEFS}/tracing_on`]);
const kvmTraceAtShutdown = () => spawnSync('sh', ['-c', `grep -a -B 30 -A 2 'reason shutdown' ${TRACEFS}/trace | tail -n 100`], { encoding: 'latin1' }).stdout;

/** tsvmm reported that its L2 triple-faulted: on its terminal (run without --json) or in its --json outcome. */
const l2Crashed = (result) => result.vmm.some((v) => /guest reset \(triple fault\)/.test(v.output) || /"reason":"triple-fault"/.test(v.stderr));

for (const name of wanted) {
  const scenario = SCENARIOS[name];
  emit({ event: 'start', scenario: name, uptime: uptime() });
  // A scenario whose L2 crashed (a triple fault) runs again, up to twice, and its result keeps the
  // failed attempts with tsvmm's crash report and L1's KVM trace: such crashes are rare and, as
  // traced, arise inside TCG's nested paging (README, "Booting Linux"); one should not fail the
  // whole nested run, three in a row do. Any other failure is reported at once.
  const failedAttempts = [];
  let result = await attempt(name, scenario);
  while (!result.ok && scenario && failedAttempts.length < 2 && l2Crashed(result)) {
    failedAttempts.push({
      error: result.error, failedChecks: result.checks.filter((c) => !c.ok),
      // (the output's tail holds tsvmm's crash report where it ran on a terminal: every vCPU's state)
      vmm: result.vmm.map((v) => ({ argv: v.argv, output: v.output.slice(-20000), stderr: v.stderr })),
      kvmTrace: kvmTraceAtShutdown(),
    });
    emit({ event: 'retry', scenario: name, error: result.error, uptime: uptime() });
    result = await attempt(name, scenario);
  }
  if (failedAttempts.length) result.failedAttempts = failedAttempts;
  if (!result.ok && l2Crashed(result)) result.kvmTrace = kvmTraceAtShutdown();
  emit({ event: 'result', scenario: name, ...result });
}
emit({ event: 'done', uptime: uptime() });

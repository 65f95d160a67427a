// tsvmm-runc run directly, as an engine runs it: the lifecycle through separate processes, the
// config.json fields runc honours (seccomp, sysctl, rlimits, oomScoreAdj, cpu shares, hooks with
// the state on stdin), and bad input: one line (JSON with --log-format json), exit status 1,
// nothing left behind.

import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUNDLE, runcBundle, type RuncConfig as Config } from '../helpers/container-rootfs.js';
import { engineMissingReason, RUNC } from '../helpers/engines.js';

const missing = engineMissingReason([]);

describe.skipIf(missing)('tsvmm-runc', () => {
  let dir: string;
  let root: string;
  const suffix = () => `${process.pid}-${Math.random().toString(36).slice(2, 7)}`;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-runc-'));
    root = path.join(dir, 'root');
  });

  afterEach(() => {
    for (const id of containers()) runc(['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the root holds besides the warm create server's files (warm:*, src/runtime/warm-server.ts). */
  const containers = () => (existsSync(root) ? readdirSync(root) : []).filter((name) => !name.startsWith('warm:'));

  /** Runs tsvmm-runc with its output in files (a created container keeps the stdio it is given). */
  /** `inherit`: descriptors the caller leaves inheritable past stdio, as a careless shim might. */
  function runc(args: string[], options: { json?: boolean; env?: Record<string, string>; inherit?: number[] } = {}) {
    const out = path.join(dir, 'out');
    const err = path.join(dir, 'err');
    const fds = [openSync(out, 'w'), openSync(err, 'w')];
    const global = ['--root', root, ...(options.json ? ['--log-format', 'json'] : [])];
    const r = spawnSync(RUNC, [...global, ...args], { stdio: ['ignore', ...fds, ...(options.inherit ?? [])], timeout: 60_000, env: options.env ?? process.env });
    fds.forEach(closeSync);
    return { code: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  }

  const bundle = (change?: (c: Config) => void) => runcBundle(dir, change);

  function expectOneLine(r: { code: number | null; stderr: string }, message: string | RegExp): void {
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(typeof message === 'string' ? new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : message);
  }

  it('create leaves the init waiting with its pid in --pid-file; start releases it; state, ps, pause, resume, kill, delete', () => {
    const id = `life-${suffix()}`;
    const b = bundle((c) => {
      c.process.args = ['sh', '-c', 'echo started > /dev/shm/x; sleep 300'];
      c.annotations = { 'org.example/"quoted"': 'back\\slash\n\ttab \u0001', 'é': 'ü' };
    });
    const pidFile = path.join(dir, 'pid');
    expect(runc(['create', '--bundle', b, '--pid-file', pidFile, id]).code).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('container-init');
    // state, start, kill and delete in the common case are the C helper's alone: no node on the PATH needed.
    const noNode = { env: { PATH: '/nonexistent' } };
    // The C helper's state is Node's, to the byte, in every status.
    const state = () => {
      const fast = runc(['state', id], noNode);
      const node = spawnSync('node', [path.resolve('dist/bundle/runc.cjs'), '--root', root, 'state', id], { encoding: 'utf8' });
      expect(fast.code, fast.stderr).toBe(0);
      expect(fast.stdout).toBe(node.stdout);
      return JSON.parse(fast.stdout) as { status: string; pid: number; id: string; bundle: string; ociVersion: string; annotations: Record<string, string> };
    };
    expect(state()).toMatchObject({ id, status: 'created', pid, bundle: b, annotations: { 'é': 'ü' } });
    expectOneLine(runc(['ps', id], noNode), /^tsvmm-runc: cannot run node: No such file or directory$/);
    expect(runc(['start', id], noNode).code).toBe(0);
    expect(state().status).toBe('running');
    expect(JSON.parse(runc(['ps', '--format', 'json', id]).stdout)).toContain(pid);
    expect(runc(['pause', id]).code).toBe(0);
    expect(state().status).toBe('paused');
    expectOneLine(runc(['exec', id, 'true']), 'cannot exec in a paused container');
    expect(runc(['resume', id]).code).toBe(0);
    const exec = runc(['exec', id, 'cat', '/dev/shm/x']);
    expect(exec.stdout).toBe('started\n');
    // update, as containerd's and the CRI plugin's resource updates call it.
    writeFileSync(path.join(dir, 'resources.json'), JSON.stringify({ pids: { limit: 50 } }));
    expect(runc(['update', '--resources', path.join(dir, 'resources.json'), id]).code).toBe(0);
    expect(runc(['exec', id, 'sh', '-c', 'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max']).stdout).toBe('50\n');
    expect(runc(['kill', id, '9'], noNode).code).toBe(0);
    // Waiting reads the state once per round: the two reads of state() may fall either side of the init's death.
    for (let i = 0; i < 200 && (JSON.parse(runc(['state', id]).stdout) as { status: string }).status !== 'stopped'; i++) spawnSync('sleep', ['0.02']);
    expect(state()).toMatchObject({ status: 'stopped', pid: 0 });
    expectOneLine(runc(['kill', id]), 'container not running');
    expect(runc(['delete', id], noNode).code).toBe(0);
    expect(runc(['delete', '--force', id], noNode).code).toBe(0);
    expect(existsSync(path.join(root, id))).toBe(false);
  });

  it('exec --cap adds a capability to the process; events reports the cgroup counters, once (--stats) or until the container stops', async () => {
    const id = `caps-${suffix()}`;
    const b = bundle((c) => { c.process.args = ['sleep', '300']; });
    expect(runc(['create', '--bundle', b, id]).code).toBe(0);
    expect(runc(['start', id]).code).toBe(0);
    const CAP_NET_ADMIN = 12n;
    const effective = (extra: string[]) => BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(runc(['exec', ...extra, id, 'cat', '/proc/self/status']).stdout)![1]}`);
    expect((effective([]) >> CAP_NET_ADMIN) & 1n).toBe(0n);
    expect((effective(['--cap', 'CAP_NET_ADMIN']) >> CAP_NET_ADMIN) & 1n).toBe(1n);
    expectOneLine(runc(['exec', '--cap', 'CAP_NO_SUCH', id, 'true']), /CAP_NO_SUCH/);

    const stats = JSON.parse(runc(['events', '--stats', id]).stdout) as { type: string; id: string; data: { cpu: { usage: { total: number } }; pids: { current: number } } };
    expect(stats).toMatchObject({ type: 'stats', id });
    expect(stats.data.pids.current).toBeGreaterThanOrEqual(1);
    expect(stats.data.cpu.usage.total).toBeGreaterThan(0);
    expectOneLine(runc(['events', '--interval', 'soon', id]), 'invalid duration "soon" (e.g. 5s, 500ms)');
    // A stream: a record every interval, ending when the container does.
    const stream = spawn(RUNC, ['--root', root, 'events', '--interval', '100ms', id], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    stream.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    await expect.poll(() => out.split('\n').length, { timeout: 10_000 }).toBeGreaterThan(2);
    expect(runc(['kill', id, 'KILL']).code).toBe(0);
    expect(await new Promise((resolve) => stream.on('close', resolve))).toBe(0);
    expect(out.trim().split('\n').every((l) => (JSON.parse(l) as { type: string }).type === 'stats')).toBe(true);
    expect(runc(['delete', id]).code).toBe(0);
  });

  it('--preserve-fds passes the caller\'s fds from 3 on to the container\'s process (run and exec)', () => {
    const id = `fds-${suffix()}`;
    const file = path.join(dir, `fd3-${suffix()}`);
    const b = bundle((c) => { c.process.args = ['sh', '-c', 'echo from-run >&3; echo four >&4; sleep 300']; });
    const passed = [openSync(file, 'w'), openSync('/dev/null', 'w')];
    // stdout and stderr in files: a detached container keeps what it was given open.
    const withFds = (args: string[]) => {
      const err = path.join(dir, 'fds-err');
      const fds = [openSync('/dev/null', 'w'), openSync(err, 'w')];
      const r = spawnSync(RUNC, ['--root', root, ...args], { stdio: ['ignore', ...fds, ...passed], timeout: 60_000 });
      fds.forEach((fd) => closeSync(fd));
      return { status: r.status, stderr: readFileSync(err, 'utf8') };
    };
    try {
      expect(withFds(['run', '--detach', '--preserve-fds', '2', '--bundle', b, id]).status).toBe(0);
      const exec = withFds(['exec', '--preserve-fds', '1', id, 'sh', '-c', 'echo from-exec >&3']);
      expect(exec.status, exec.stderr).toBe(0);
      // Without it, fd 3 is not there.
      expect(withFds(['exec', id, 'sh', '-c', 'echo nothing >&3']).status).not.toBe(0);
    } finally {
      passed.forEach((fd) => closeSync(fd));
    }
    expect(readFileSync(file, 'utf8')).toBe('from-run\nfrom-exec\n');
    expectOneLine(runc(['exec', '--preserve-fds', 'all', id, 'true']), 'invalid value "all" for flag -preserve-fds');
    expect(runc(['delete', '--force', id]).code).toBe(0);
  });

  it('honours seccomp, sysctl, rlimits, oomScoreAdj and cpu shares as runc does', () => {
    const b = bundle((c) => {
      c.process.args = ['sh', '-c', 'mkdir /dev/shm/d; echo mkdir=$?; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/self/oom_score_adj; ulimit -n; cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || echo no-v1'];
      c.process.oomScoreAdj = 500;
      c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 321, hard: 321 }];
      c.linux.sysctl = { 'net.ipv4.ip_unprivileged_port_start': '80' };
      c.linux.resources.cpu = { shares: 512 };
      c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
    });
    const r = runc(['run', '--bundle', b, `spec-${suffix()}`]);
    expect(r.stderr).toMatch(/mkdir: can't create directory '\/dev\/shm\/d': Operation not permitted/);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual(['mkdir=1', '80', '500', '321']);
    if (lines[4] !== 'no-v1') expect(lines[4]).toBe('512');
    expect(r.code).toBe(0);
  });

  it('runs a user namespace with its id mappings: root inside, an unprivileged uid on the host, exec included', () => {
    const id = `userns-${suffix()}`;
    // The mapped root is an unprivileged user on the host: the root filesystem's path must be
    // open to it (the test bundle's directory is private), as with runc.
    chmodSync(dir, 0o755);
    const rootfs = path.join(dir, 'userns-rootfs');
    cpSync(path.join(BUNDLE, 'rootfs'), rootfs, { recursive: true, verbatimSymlinks: true });
    const b = bundle((c) => {
      c.root.path = rootfs;
      c.process.args = ['sh', '-c', 'id -u > /dev/shm/id; echo x > /dev/null && sleep 300'];
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    });
    const pidFile = path.join(dir, 'pid');
    const created = runc(['create', '--bundle', b, '--pid-file', pidFile, id]);
    expect(created.code, created.stderr).toBe(0);
    expect(runc(['start', id]).code).toBe(0);
    const hostUid = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
    expect(hostUid(Number(readFileSync(pidFile, 'utf8')))).toBe('100000');
    const exec = runc(['exec', '--detach', '--pid-file', path.join(dir, 'exec.pid'), id, 'sleep', '300']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(hostUid(Number(readFileSync(path.join(dir, 'exec.pid'), 'utf8')))).toBe('100000');
    expect(runc(['exec', id, 'sh', '-c', 'cat /dev/shm/id; id -u; cat /proc/self/uid_map']).stdout.split(/\s+/).filter(Boolean)).toEqual(['0', '0', '0', '100000', '65536']);
    expect(runc(['delete', '--force', id]).code).toBe(0);
  });

  it('runs the hooks with the state on stdin; a failing or hanging one fails create and leaves nothing', () => {
    const log = path.join(dir, 'hooks.log');
    const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `echo ${name} "$(cat)" >> ${log}`] });
    const id = `hooks-${suffix()}`;
    const b = bundle((c) => {
      c.process.args = ['true'];
      c.hooks = { prestart: [hook('prestart')], createRuntime: [hook('createRuntime')], poststart: [hook('poststart')], poststop: [hook('poststop')] };
    });
    expect(runc(['create', '--bundle', b, id]).code).toBe(0);
    expect(runc(['start', id]).code).toBe(0);
    for (let i = 0; i < 200 && !runc(['state', id]).stdout.includes('stopped'); i++) spawnSync('sleep', ['0.02']);
    expect(runc(['delete', id]).code).toBe(0);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['prestart', 'createRuntime', 'poststart', 'poststop']);
    const prestart = JSON.parse(lines[0]!.slice('prestart '.length));
    expect(prestart).toMatchObject({ ociVersion: '1.0.2-dev', id, status: 'creating', bundle: b });
    expect(prestart.pid).toBeGreaterThan(0);
    expect(JSON.parse(lines[3]!.slice('poststop '.length))).toMatchObject({ id, status: 'stopped' });

    // createContainer runs in the container's namespaces (mount, uts, ...) before pivot_root, with the host's files still there.
    const nsLog = path.join(dir, `ns-${suffix()}.log`);
    const created = `created-${suffix()}`;
    const b1 = bundle((c) => {
      c.process.args = ['sleep', '300'];
      c.hooks = { createContainer: [
        { path: '/bin/sh', args: ['sh', '-c', `echo "$(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/uts) $(cat)" > ${nsLog}`] },
        // ls's own directory is its fd 3: anything more came from the runtime or its caller.
        // A timeout past poll's int of milliseconds (the bundle may give any positive integer).
        { path: '/bin/sh', args: ['sh', '-c', `exec ls /proc/self/fd > ${nsLog}.fds`], timeout: Number.MAX_SAFE_INTEGER },
      ] };
    });
    const stray = openSync(path.join(dir, 'stray'), 'w');
    expect(runc(['create', '--bundle', b1, created], { inherit: [stray] }).code).toBe(0);
    closeSync(stray);
    expect(readFileSync(`${nsLog}.fds`, 'utf8').split('\n').filter(Boolean)).toEqual(['0', '1', '2', '3']);
    const initPid = (JSON.parse(runc(['state', created]).stdout) as { pid: number }).pid;
    const [mnt, uts, ...state] = readFileSync(nsLog, 'utf8').trim().split(' ');
    expect([mnt, uts]).toEqual([readlinkSync(`/proc/${initPid}/ns/mnt`), readlinkSync(`/proc/${initPid}/ns/uts`)]);
    expect(mnt).not.toBe(readlinkSync('/proc/self/ns/mnt'));
    expect(JSON.parse(state.join(' '))).toMatchObject({ id: created, status: 'creating', pid: initPid, bundle: b1 });
    expect(runc(['delete', '--force', created]).code).toBe(0);
    const refusing = bundle((c) => { c.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo not in here >&2; exit 4'] }] }; });
    expectOneLine(runc(['create', '--bundle', refusing, `refused-${suffix()}`]), 'error running createContainer hook #0 (/bin/sh) exited with status 4: not in here');

    // startContainer runs inside the container (its /dev/shm), before the command.
    const inside = `inside-${suffix()}`;
    const b2 = bundle((c) => {
      c.process.args = ['sh', '-c', 'test -s /dev/shm/state && sleep 300'];
      c.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'cat > /dev/shm/state'] }] };
    });
    expect(runc(['create', '--bundle', b2, inside]).code).toBe(0);
    expect(runc(['start', inside]).code).toBe(0);
    expect(JSON.parse(runc(['exec', inside, 'cat', '/dev/shm/state']).stdout)).toMatchObject({ id: inside, status: 'created' });
    expect(JSON.parse(runc(['state', inside]).stdout).status).toBe('running');
    expect(runc(['delete', '--force', inside]).code).toBe(0);

    const failing = bundle((c) => { c.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo no network for you >&2; exit 3'] }] }; });
    expectOneLine(runc(['create', '--bundle', failing, `fail-${suffix()}`]), /^error running prestart hook #0 \(\/bin\/sh\) exited with status 3: no network for you$/);
    const hanging = bundle((c) => { c.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '100'], timeout: 1 }] }; });
    const r = runc(['create', '--bundle', hanging, `hang-${suffix()}`], { json: true });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr)).toMatchObject({ level: 'error', msg: 'error running createRuntime hook #0 (/bin/sleep) did not finish within 1 s and was killed' });
    expect(containers()).toEqual([]);
  });

  it('bad input: one clear line, exit status 1, nothing left behind', async () => {
    const id = `bad-${suffix()}`;
    expectOneLine(runc(['state', 'nosuch']), 'container "nosuch" does not exist');
    expectOneLine(runc(['start', 'nosuch']), 'container "nosuch" does not exist');
    expectOneLine(runc(['kill', 'nosuch']), 'container "nosuch" does not exist');
    expectOneLine(runc(['delete', 'nosuch']), 'container "nosuch" does not exist');
    expect(runc(['delete', '--force', 'nosuch']).code).toBe(0);
    expectOneLine(runc(['create', '--bundle', path.join(dir, 'none'), id]), `bundle ${path.join(dir, 'none')}: no such directory`);
    const notThere = bundle((c) => { c.process.args = ['no-such-command']; });
    expectOneLine(runc(['create', '--bundle', notThere, id]), /^container init failed: exec no-such-command: not found in the container's PATH/);
    const invalid = bundle((c) => { c.process.args = 'sh'; });
    expectOneLine(runc(['create', '--bundle', invalid, id]), `${path.join(invalid, 'config.json')}: process.args must be a list of strings`);
    const json = runc(['state', 'nosuch'], { json: true });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toMatchObject({ level: 'error', msg: 'container "nosuch" does not exist' });
    expectOneLine(runc(['frobnicate']), 'no such command: frobnicate (see tsvmm-runc --help)');
    expectOneLine(runc(['create', '--nope', id]), 'flag provided but not defined: -nope');

    // A console socket that refuses.
    const tty = bundle((c) => { c.process.terminal = true; });
    expectOneLine(runc(['create', '--bundle', tty, id]), 'cannot allocate tty if runc will detach without setting console socket');
    expectOneLine(runc(['create', '--bundle', tty, '--console-socket', path.join(dir, 'no.sock'), id]), /^container init failed: connect to the console socket .*no\.sock: No such file or directory$/);
    expect(containers()).toEqual([]);

    const b = bundle((c) => { c.process.args = ['sleep', '300']; });
    expect(runc(['create', '--bundle', b, id]).code).toBe(0);
    expectOneLine(runc(['create', '--bundle', b, id]), `container with given ID already exists: ${id}`);
    // The state names a pid to signal: kept from other users (0600), and refused by both halves
    // when someone else could have written it.
    const stateFile = path.join(root, id, 'state');
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    chmodSync(stateFile, 0o620);
    expectOneLine(runc(['kill', id, '9']), `the state of container ${id} (${stateFile}) may have been written by another user; refusing it`);
    chmodSync(stateFile, 0o600);
    expectOneLine(runc(['delete', 'bad/id']), 'invalid container id format: bad/id');
    expect(runc(['start', id]).code).toBe(0);
    expectOneLine(runc(['start', id]), 'cannot start an already running container');
    expectOneLine(runc(['resume', id]), 'container not paused');
    expectOneLine(runc(['delete', id]), `cannot delete container ${id} that is not stopped: running`);
    expect(runc(['delete', '--force', id]).code).toBe(0);
    expect(containers()).toEqual([]);
  });

  it('create starts as little of Node as it can: the front end forked the helper, so neither child_process nor net is loaded', () => {
    const id = `lean-${suffix()}`;
    const record = path.join(dir, 'modules.cjs');
    const list = path.join(dir, 'modules.txt');
    writeFileSync(record, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
    const r = runc(['create', '--bundle', bundle(), id], { env: { ...process.env, NODE_OPTIONS: `--require ${record}` } as Record<string, string> });
    expect(r.code, r.stderr).toBe(0);
    const loaded = readFileSync(list, 'utf8').split('\n');
    expect(loaded).toContain('NativeModule fs');
    expect(loaded.filter((m) => /^NativeModule (child_process|net|stream)$/.test(m))).toEqual([]);
    expect(JSON.parse(runc(['state', id]).stdout)).toMatchObject({ status: 'created' });
  });

  it('hands the pty master to --console-socket (SCM_RIGHTS); the process has it as its terminal', async () => {
    const id = `tty-${suffix()}`;
    const socket = path.join(dir, 'console.sock');
    const output = path.join(dir, 'console.out');
    const receiver = spawn('/usr/bin/python3', [path.resolve('test/helpers/console-socket.py'), socket, output], { stdio: ['ignore', 'pipe', 'inherit'] });
    const said: string[] = [];
    receiver.stdout.on('data', (chunk: Buffer) => said.push(...chunk.toString().split('\n').filter(Boolean)));
    try {
      while (!said.includes('listening')) await new Promise((resolve) => setTimeout(resolve, 20));
      const b = bundle((c) => { c.process.terminal = true; c.process.args = ['sh', '-c', 'tty; echo on-the-terminal']; });
      expect(runc(['create', '--bundle', b, '--console-socket', socket, id]).code).toBe(0);
      for (let i = 0; i < 250 && said.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(said).toContain('received');
      expect(runc(['start', id]).code).toBe(0);
      await new Promise((resolve) => receiver.once('exit', resolve));
      expect(readFileSync(output, 'utf8')).toMatch(/^\/dev\/pts\/\d+\r\non-the-terminal\r\n$/);
    } finally {
      receiver.kill();
    }
  });
});

// OCI bundles: config.json as `runc spec` writes it becomes a ContainerSpec; what is broken or
// not implemented is refused in one line that names the field.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/container/oci.js';
import { resolveContainerConfig, resolveLimits } from '../../src/container/config.js';
import { ContainerError } from '../../src/container/errors.js';

/** config.json as parsed JSON, which the tests tamper with freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Config = Record<string, any>;

/** The config.json of `runc spec` (runc 1.1.5), with terminal off. */
function runcSpec(): Config {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false, user: { uid: 0, gid: 0 }, args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'], cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/kcore', '/sys/firmware'],
      readonlyPaths: ['/proc/sys'],
    },
  };
}

function bundle(config: unknown, options: { rootfs?: boolean; raw?: string } = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-bundle-'));
  if (options.rootfs !== false) mkdirSync(path.join(dir, 'rootfs'));
  if (options.raw !== undefined) writeFileSync(path.join(dir, 'config.json'), options.raw);
  else if (config !== undefined) writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ContainerError);
    const message = (error as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('expected a refusal');
}

describe('OCI bundles', () => {
  it('reads what `runc spec` writes', () => {
    const dir = bundle({ ...runcSpec(), linux: { ...runcSpec().linux, resources: { memory: { limit: 64 << 20 }, cpu: { quota: 50_000, period: 100_000 }, pids: { limit: 32 }, devices: [{ allow: false, access: 'rwm' }] } } });
    const spec = loadBundle(dir);
    expect(spec.process.args).toEqual(['sh']);
    expect(spec.process.capabilities.bounding).toEqual(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
    expect(spec.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 }]);
    expect(spec.root).toEqual({ path: path.join(dir, 'rootfs'), layers: [], readonly: true });
    expect(spec.hostname).toBe('runc');
    expect(spec.namespaces).toEqual(['pid', 'network', 'ipc', 'uts', 'mount']);
    expect(spec.mounts.map((m) => m.type)).toEqual(['proc', 'tmpfs', 'sysfs', 'cgroup']);
    expect(spec.resources).toEqual({ memory: 64 << 20, cpu: { quota: 50_000, period: 100_000 }, pids: 32 });
    expect(spec.deviceRules).toEqual([{ allow: false, type: 'a', major: null, minor: null, access: 'rwm' }]);
    expect(spec.maskedPaths).toEqual(['/proc/kcore', '/sys/firmware']);
    expect(spec.rootPropagation).toBe('rslave');
  });

  it('takes bind sources and the root relative to the bundle, and "unlimited" as no limit', () => {
    const config = runcSpec();
    config.mounts.push({ destination: '/data', type: 'bind', source: 'rootfs', options: ['rbind', 'ro'] });
    config.linux.resources = { memory: { limit: -1 }, pids: { limit: 0 }, cpu: { quota: -1 } };
    const dir = bundle(config);
    const spec = loadBundle(dir);
    expect(spec.mounts.at(-1)).toEqual({ destination: '/data', type: 'bind', source: path.join(dir, 'rootfs'), options: ['rbind', 'ro'] });
    expect(spec.resources).toEqual({});
  });

  it('refuses a bundle that is not there, has no config.json, or bad JSON', () => {
    expect(refusal(() => loadBundle('/no/such/bundle'))).toBe('bundle /no/such/bundle: no such directory');
    const empty = bundle(undefined);
    expect(refusal(() => loadBundle(empty))).toBe(`bundle ${empty} has no config.json (\`runc spec\` writes one)`);
    const broken = bundle(undefined, { raw: '{"ociVersion": "1.0.2", ' });
    expect(refusal(() => loadBundle(broken))).toMatch(new RegExp(`^${path.join(broken, 'config.json')} is not valid JSON: `));
  });

  it('refuses a missing root filesystem and malformed fields, naming them', () => {
    const noRoot = bundle(runcSpec(), { rootfs: false });
    expect(refusal(() => loadBundle(noRoot))).toBe(`bundle ${noRoot}: root.path "rootfs": no such directory (${path.join(noRoot, 'rootfs')})`);
    const cases: [(c: Config) => void, RegExp][] = [
      [(c) => { c.process.args = 'sh'; }, /process\.args must be a list of strings$/],
      [(c) => { c.process.args = []; }, /process\.args is empty: there is nothing to run$/],
      [(c) => { c.process.cwd = 'tmp'; }, /process\.cwd "tmp" must be an absolute path$/],
      [(c) => { c.process.env = ['JUSTNAME']; }, /process\.env entry "JUSTNAME" is not NAME=value$/],
      [(c) => { c.process.rlimits[0].type = 'RLIMIT_BOGUS'; }, /process\.rlimits\[0\]\.type "RLIMIT_BOGUS" is not a Linux rlimit$/],
      [(c) => { delete c.process; }, /process is missing: there is nothing to run$/],
      [(c) => { c.mounts[0].destination = 'proc'; }, /mounts\[0\]\.destination "proc" must be an absolute path$/],
      [(c) => { c.linux.resources = { memory: { limit: '64M' } }; }, /linux\.resources\.memory\.limit must be a whole number$/],
      [(c) => { c.ociVersion = '2.0.0'; }, /ociVersion "2\.0\.0" is not a 1\.x runtime spec$/],
    ];
    for (const [change, message] of cases) {
      const config = runcSpec();
      change(config);
      expect(refusal(() => loadBundle(bundle(config)))).toMatch(message);
    }
  });

  it('ignores properties it does not know, as the runtime spec requires, and zero values as runc does', () => {
    const config = runcSpec();
    config.process.futureField = { anything: 1 };
    config.linux.futureField = [1, 2];
    config.vm = { hypervisor: { path: '/x' } };
    config.linux.resources.blockIO = { weight: 0 };
    config.linux.resources.cpu = { shares: 0 };
    config.linux.resources.memory = { disableOOMKiller: false, swappiness: -1 };
    config.process.apparmorProfile = '';
    config.process.selinuxLabel = '';
    config.linux.seccomp = null;
    config.linux.sysctl = {};
    const spec = loadBundle(bundle(config));
    expect(spec.resources).toEqual({});
  });

  it('refuses what it cannot honour where runc refuses it too, naming the field', () => {
    const cases: [(c: Config) => void, RegExp][] = [
      [(c) => { c.linux.namespaces.push({ type: 'user' }); }, /linux\.uidMappings and linux\.gidMappings are both needed with a user namespace$/],
      [(c) => { c.linux.namespaces.push({ type: 'time' }); }, /linux\.namespaces\[5\] \(a time namespace\) is not supported by tsvmm$/],
      [(c) => { c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount'); }, /has no mount namespace/],
      [(c) => { c.linux.namespaces[4].path = '/proc/1/ns/mnt'; }, /joins a mount namespace by path/],
      [(c) => { c.linux.sysctl = { 'kernel.panic': '1' }; }, /linux\.sysctl\.kernel\.panic is not in a namespace of the container/],
      [(c) => { c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'network'); c.linux.sysctl = { 'net.ipv4.ip_forward': '1' }; }, /needs a network namespace of the container's own$/],
      [(c) => { c.process.apparmorProfile = 'docker-default'; }, /process\.apparmorProfile "docker-default": AppArmor profiles are not applied by tsvmm$/],
      [(c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_NOTIFY' }; }, /linux\.seccomp\.defaultAction "SCMP_ACT_NOTIFY" is not supported/],
      [(c) => { c.linux.resources.blockIO = { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 }] }; }, /linux\.resources\.blockIO\.throttleReadBpsDevice is not supported by tsvmm$/],
      [(c) => { c.linux.resources.hugepageLimits = [{ pageSize: '2MB', limit: 1 }]; }, /linux\.resources\.hugepageLimits is not supported by tsvmm$/],
    ];
    for (const [change, message] of cases) {
      const config = runcSpec();
      change(config);
      expect(refusal(() => loadBundle(bundle(config)))).toMatch(message);
    }
  });

  it('checks the types of what it reads, and hooks for tsvmm container run', () => {
    const cases: [(c: Config) => void, RegExp][] = [
      [(c) => { c.hooks = { prestart: [{ path: 'relative' }] }; }, /hooks\.prestart\[0\]\.path "relative" must be an absolute path$/],
      [(c) => { c.hooks = { poststop: [{ path: '/bin/true', timeout: 0 }] }; }, /hooks\.poststop\[0\]\.timeout 0 must be more than 0 seconds$/],
      [(c) => { c.linux.resources.cpu = { shares: 'many' }; }, /linux\.resources\.cpu\.shares must be a whole number$/],
      [(c) => { c.linux.resources.memory = { limit: 100 << 20, swap: 50 << 20 }; }, /swap 52428800 is less than the memory limit/],
      [(c) => { c.linux.namespaces[1].path = 'net'; }, /linux\.namespaces\[1\]\.path "net" must be an absolute path$/],
    ];
    for (const [change, message] of cases) {
      const config = runcSpec();
      change(config);
      expect(refusal(() => loadBundle(bundle(config)))).toMatch(message);
    }
    const config = runcSpec();
    config.hooks = { prestart: [{ path: '/bin/true' }] };
    expect(refusal(() => resolveContainerConfig({ bundle: bundle(config) }))).toMatch(/hooks \(prestart\) are run by tsvmm-runc/);
  });

  it('gives the pty a bundle asks for (process.terminal), as runc does, unless told not to', () => {
    const config = runcSpec();
    config.process.terminal = true;
    const asks = bundle(config);
    expect(resolveContainerConfig({ bundle: asks }).terminal).toEqual({ rows: 24, cols: 80 });
    expect(resolveContainerConfig({ bundle: asks, terminal: { rows: 5, cols: 7 } }).terminal).toEqual({ rows: 5, cols: 7 });
    const told = resolveContainerConfig({ bundle: asks, terminal: false });
    expect(told.terminal).toBeUndefined();
    expect(told.spec.process.terminal).toBe(false);
    expect(refusal(() => resolveContainerConfig({ bundle: asks, stdio: 'inherit' }))).toMatch(/^config\.json asks for a terminal \(process\.terminal\), which needs stdio "pipe"/);
    config.process.consoleSize = { height: 30, width: 100 };
    expect(resolveContainerConfig({ bundle: bundle(config) }).terminal).toEqual({ rows: 30, cols: 100 });
    expect(resolveContainerConfig({ bundle: bundle(config), terminal: true }).terminal).toEqual({ rows: 30, cols: 100 });
    config.process.terminal = false;
    expect(resolveContainerConfig({ bundle: bundle(config) }).terminal).toBeUndefined();
    expect(resolveContainerConfig({ bundle: bundle(config), terminal: true }).spec.process.terminal).toBe(true);
  });
});

describe('container options', () => {
  it('needs a root filesystem that exists, and something to run', () => {
    expect(refusal(() => resolveContainerConfig({ command: ['true'] }))).toBe('say which root filesystem to use: --rootfs DIR, or --bundle DIR for an OCI bundle');
    expect(refusal(() => resolveContainerConfig({ rootfs: '/no/such/rootfs', command: ['true'] }))).toBe('--rootfs /no/such/rootfs: no such directory');
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-rootfs-'));
    expect(refusal(() => resolveContainerConfig({ rootfs: dir }))).toBe('say what to run: tsvmm container run --rootfs DIR -- COMMAND [ARGS...]');
    expect(refusal(() => resolveContainerConfig({ rootfs: dir, command: ['x'], layers: ['/no/layer'] }))).toBe('--layer /no/layer: no such directory');
    expect(refusal(() => resolveContainerConfig({ rootfs: dir, command: ['x'], hostname: 'no spaces' }))).toBe('--hostname "no spaces": not a valid host name');
  });

  it('turns --mem, --cpus and --pids into cgroup settings, refusing nonsense', () => {
    expect(resolveLimits({ memory: '64M', cpus: 0.5, pids: 100 })).toEqual({ memory: 64 << 20, cpu: { quota: 50_000, period: 100_000 }, pids: 100 });
    expect(resolveLimits({ memory: 1 << 30 })).toEqual({ memory: 1 << 30 });
    expect(refusal(() => resolveLimits({ memory: 'lots' }))).toBe('--mem "lots": not a size (try 256M or 1G)');
    expect(refusal(() => resolveLimits({ memory: '1M' }))).toBe('--mem 1M: at least 4 MiB is needed to start anything');
    expect(refusal(() => resolveLimits({ cpus: -1 }))).toBe('--cpus -1: must be a positive number, such as 0.5 or 2');
    expect(refusal(() => resolveLimits({ cpus: 10_000 }))).toMatch(/^--cpus 10000: this host has \d+ CPUs?$/);
    expect(refusal(() => resolveLimits({ pids: 2.5 }))).toBe('--pids 2.5: must be a whole number of at least 1');
  });
});

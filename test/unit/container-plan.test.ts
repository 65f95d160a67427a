// The policy half of the container runtime, checked without running anything: which cgroup
// hierarchy a host offers (from the text of its /proc files, as found on real hosts), and the
// step list a spec becomes for the helper.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectCgroups, type CgroupSources } from '../../src/container/cgroups.js';
import { buildPlan, CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, type PlanCgroups, type PlanContext } from '../../src/container/plan.js';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE } from '../../src/container/mount-options.js';
import { defaultSpec } from '../../src/container/spec.js';

// This project's machines: v1 controllers, one per hierarchy, and an empty cgroup2 beside them.
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
6:freezer:/
5:devices:/
4:memory:/process_api/27d6
2:cpuacct:/
1:cpu:/
0::/`;

// A systemd host in unified mode.
const UNIFIED_MOUNTINFO = '35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';
const UNIFIED_CGROUP = '0::/user.slice/user-1000.slice/session-3.scope';

// An older systemd host: cpu and cpuacct share a hierarchy.
const SHARED_MOUNTINFO = `26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
27 25 0:24 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
29 25 0:26 / /sys/fs/cgroup/freezer rw,nosuid - cgroup cgroup rw,freezer`;
const SHARED_CGROUP = `4:cpu,cpuacct:/user.slice
3:memory:/user.slice
2:pids:/user.slice/user-0.slice
1:freezer:/`;

function sources(mountinfo: string, selfCgroup: string, controllers: string[] = [], forced?: string): CgroupSources {
  return { mountinfo, selfCgroup, v2Controllers: () => controllers, forced };
}

describe('finding the cgroup hierarchies', () => {
  it('uses v1 on a hybrid host whose v2 hierarchy has no controllers, nesting under our own cgroups', () => {
    const layout = detectCgroups(sources(HYBRID_MOUNTINFO, HYBRID_CGROUP));
    expect(layout.version).toBe('v1');
    if (layout.version !== 'v1') return;
    expect(layout.hierarchies.get('memory')).toEqual({ dir: '/sys/fs/cgroup/memory/process_api/27d6', mountPoint: '/sys/fs/cgroup/memory' });
    expect(layout.hierarchies.get('pids')).toEqual({ dir: '/sys/fs/cgroup/pids', mountPoint: '/sys/fs/cgroup/pids' });
    expect(layout.hierarchies.has('systemd')).toBe(false);
  });

  it('uses v2 on a unified host, and on a hybrid one only when asked (TSVMM_CGROUP=v2)', () => {
    expect(detectCgroups(sources(UNIFIED_MOUNTINFO, UNIFIED_CGROUP, ['cpuset', 'cpu', 'io', 'memory', 'pids'])))
      .toEqual({ version: 'v2', mountPoint: '/sys/fs/cgroup', controllers: new Set(['cpuset', 'cpu', 'io', 'memory', 'pids']) });
    expect(detectCgroups(sources(HYBRID_MOUNTINFO, HYBRID_CGROUP, [], 'v2'))).toEqual({ version: 'v2', mountPoint: '/sys/fs/cgroup/unified', controllers: new Set() });
    // A hybrid host whose v2 hierarchy got the controllers prefers it.
    expect(detectCgroups(sources(HYBRID_MOUNTINFO, HYBRID_CGROUP, ['memory', 'cpu', 'pids'])).version).toBe('v2');
  });

  it('handles controllers that share a hierarchy', () => {
    const layout = detectCgroups(sources(SHARED_MOUNTINFO, SHARED_CGROUP));
    if (layout.version !== 'v1') throw new Error('expected v1');
    expect(layout.hierarchies.get('cpu')!.dir).toBe('/sys/fs/cgroup/cpu,cpuacct/user.slice');
    expect(layout.hierarchies.get('cpuacct')!.dir).toBe('/sys/fs/cgroup/cpu,cpuacct/user.slice');
    expect(layout.hierarchies.get('pids')!.dir).toBe('/sys/fs/cgroup/pids/user.slice/user-0.slice');
  });

  it('says in one line when neither version is usable', () => {
    expect(() => detectCgroups(sources('22 1 0:5 / /proc rw - proc proc rw', '0::/')))
      .toThrow(/^no usable cgroup hierarchy: no cgroup v2 hierarchy is mounted, and no cgroup v1 controller is mounted; containers need one to be limited and paused$/);
    const partial = HYBRID_MOUNTINFO.split('\n').filter((l) => !/freezer|memory/.test(l)).join('\n');
    expect(() => detectCgroups(sources(partial, HYBRID_CGROUP, ['io'])))
      .toThrow(/^no usable cgroup hierarchy: cgroup v2 at \/sys\/fs\/cgroup\/unified offers none of memory, cpu, pids, and cgroup v1 lacks the memory, freezer controllers; /);
    expect(() => detectCgroups(sources(UNIFIED_MOUNTINFO, UNIFIED_CGROUP, [], 'v1'))).toThrow(/^TSVMM_CGROUP=v1, but cgroup v1 is not mounted$/);
  });
});

const V1: PlanCgroups = {
  version: 'v1',
  procsFiles: ['/sys/fs/cgroup/memory/tsvmm/c/cgroup.procs', '/sys/fs/cgroup/pids/tsvmm/c/cgroup.procs'],
  views: [{ name: 'memory', path: '/sys/fs/cgroup/memory/tsvmm/c' }, { name: 'pids', path: '/sys/fs/cgroup/pids/tsvmm/c' }],
  devicesEnforced: true,
};

function context(overrides: Partial<PlanContext> = {}): PlanContext {
  return { supervisor: 1234, cgroups: V1, rootfs: '/images/busybox', prepare: [], waitForHost: false, ...overrides };
}

describe('the helper\'s plan', () => {
  it('asks for every namespace, the cgroups, the command, and the default capabilities', () => {
    const spec = defaultSpec('/images/busybox', ['sh', '-c', 'echo hi']);
    spec.hostname = 'c1';
    const plan = buildPlan(spec, context());
    expect(plan.cloneFlags).toBe(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET);
    expect(plan.unshareFlags).toBe(0);
    expect(plan.cgroupProcs).toEqual(V1.procsFiles);
    expect(plan.rootPropagation).toBe(MS_SLAVE | MS_REC);
    expect(plan).toMatchObject({ supervisor: 1234, rootfs: '/images/busybox', hostname: 'c1', process: { cwd: '/', umask: 0o022, noNewPrivileges: true, args: ['sh', '-c', 'echo hi'] } });
    expect(plan.process.capabilities).toEqual({ bounding: 0xa80425fb, effective: 0xa80425fb, permitted: 0xa80425fb, inheritable: 0, ambient: 0 });
    expect(plan.process.rlimits).toEqual([{ resource: 7, soft: 1024, hard: 1024 }]);
    expect(plan.maskedPaths).toContain('/proc/kcore');
    expect(plan.readonlyPaths).toContain('/proc/sys');
    // A cgroup namespace is made by the init itself, once it is inside its cgroups.
    spec.namespaces.push('cgroup');
    expect(buildPlan(spec, context()).unshareFlags).toBe(CLONE_NEWCGROUP);
  });

  it('mounts in order, making read-only tmpfs and /dev read-only only after they are filled', () => {
    const plan = buildPlan(defaultSpec('/r', ['true']), context());
    const byTarget = Object.fromEntries(plan.mounts.map((m) => [m.target, m]));
    expect(plan.mounts.map((m) => m.target)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids']);
    expect(byTarget['/dev']).toMatchObject({ type: 'tmpfs', flags: MS_NOSUID | 0x1000000, data: 'mode=755,size=65536k' });
    expect(byTarget['/sys']).toMatchObject({ type: 'sysfs', flags: MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY });
    // The container's own cgroups, read-only, on a tmpfs that becomes read-only at the end.
    expect(byTarget['/sys/fs/cgroup']).toMatchObject({ type: 'tmpfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC });
    expect(byTarget['/sys/fs/cgroup/memory']).toMatchObject({ source: '/sys/fs/cgroup/memory/tsvmm/c', type: '', flags: MS_BIND | MS_REC, remountFlags: MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY });
    expect(plan.readonlyAfter).toEqual(['/sys/fs/cgroup']);
    expect(plan.devices.map((d) => d.path)).toEqual(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
    expect(plan.devices[0]).toEqual({ path: '/dev/null', mode: 0o020666, major: 1, minor: 3, uid: 0, gid: 0 });
    expect(plan.symlinks).toContainEqual({ target: 'pts/ptmx', path: '/dev/ptmx' });
    // /dev/console is whatever the init writes to (its own pty, if any), never the host's
    // console nor the caller's terminal.
    expect(plan.symlinks).toContainEqual({ target: '/proc/1/fd/1', path: '/dev/console' });
    const withTerminal = buildPlan(defaultSpec('/r', ['true']), context({ terminal: { rows: 30, cols: 100 } }));
    expect(withTerminal.process.terminal).toEqual({ rows: 30, cols: 100 });
    expect(withTerminal.symlinks).toContainEqual({ target: '/proc/1/fd/1', path: '/dev/console' });
    // A network namespace of its own gets lo up; HOME comes from /etc/passwd unless the environment has it.
    expect(plan).toMatchObject({ loopbackUp: true, setHome: true });
    const shared = defaultSpec('/r', ['true']);
    shared.namespaces = shared.namespaces.filter((n) => n !== 'network');
    shared.process.env.push('HOME=/home/x');
    expect(buildPlan(shared, context())).toMatchObject({ loopbackUp: false, setHome: false });
  });

  it('binds host paths with their options applied by a remount, and refuses options it does not implement', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-plan-'));
    writeFileSync(path.join(dir, 'file'), '');
    const spec = defaultSpec('/r', ['true']);
    spec.mounts = [
      { destination: '/data', type: 'bind', source: dir, options: ['rbind', 'ro', 'nosuid'] },
      { destination: '/etc/one-file', type: 'bind', source: path.join(dir, 'file'), options: ['bind'] },
    ];
    const [data, file] = buildPlan(spec, context()).mounts;
    expect(data).toEqual({ source: dir, target: '/data', type: '', flags: MS_BIND | MS_REC, data: '', remountFlags: MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, isFile: false, propagation: [] });
    expect(file).toMatchObject({ isFile: true, remountFlags: 0 });
    spec.mounts = [{ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['rro'] }];
    expect(() => buildPlan(spec, context())).toThrow(/^mounts\[0\] \(\/x\): mount option "rro" is not supported$/);
    spec.mounts = [{ destination: '/x', type: 'bind', source: path.join(dir, 'gone'), options: ['bind'] }];
    expect(() => buildPlan(spec, context())).toThrow(/bind source .*gone does not exist$/);
  });

  it('raises only ambient capabilities the kernel will take (permitted and inheritable), as runc does', () => {
    const spec = defaultSpec('/r', ['true']);
    const three = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    spec.process.capabilities = { bounding: three, effective: three, permitted: three, inheritable: ['CAP_KILL'], ambient: three };
    expect(buildPlan(spec, context()).process.capabilities).toEqual({ bounding: 0x20000420, effective: 0x20000420, permitted: 0x20000420, inheritable: 0x20, ambient: 0x20 });
    spec.process.capabilities = { ...spec.process.capabilities, bounding: ['CAP_NO_SUCH'] };
    expect(() => buildPlan(spec, context())).toThrow(/^process\.capabilities\.bounding: unknown capability "CAP_NO_SUCH"$/);
  });

  it('without a devices cgroup (v2), takes CAP_MKNOD away and mounts the root nodev', () => {
    const v2: PlanCgroups = { version: 'v2', procsFiles: ['/sys/fs/cgroup/tsvmm/c/cgroup.procs'], views: [{ name: '', path: '/sys/fs/cgroup/tsvmm/c' }], devicesEnforced: false };
    const spec = defaultSpec('/r', ['true']);
    spec.root.readonly = true;
    const plan = buildPlan(spec, context({ cgroups: v2 }));
    expect(plan.process.capabilities.bounding).toBe(0xa80425fb - 2 ** 27);
    expect(plan.rootRemountFlags).toBe(MS_RDONLY | MS_NODEV);
    expect(plan.mounts.find((m) => m.target === '/sys/fs/cgroup')).toMatchObject({ source: '/sys/fs/cgroup/tsvmm/c', flags: MS_BIND | MS_REC });
    expect(buildPlan(defaultSpec('/r', ['true']), context()).rootRemountFlags).toBe(0);
  });
});

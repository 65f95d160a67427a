// The plan is written in TypeScript (src/container/plan.ts) and read by the C helper
// (native/container-init.c) with its own JSON reader: two texts of one contract. This test keeps
// them one: every key a plan carries is read by the helper, and every key the helper reads is
// one that a plan (InitPlan, ExecPlan) carries, with every optional field filled in.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildExecPlan, buildPlan } from '../../src/container/plan.js';
import { defaultSpec, type ContainerSpec } from '../../src/container/spec.js';

/** Keys the helper reads from other JSON than a plan: tsvmm-runc's state.json and channel commands. */
const NOT_PLAN = ['cgroupDirs', 'startTime', 'spec', 'hooks', 'pid', 'resize'];
/** Keys the helper reads through a variable (read_mounts(root, "prepare"/"mounts")). */
const BY_VARIABLE = ['prepare', 'mounts'];

function helperKeys(): Set<string> {
  const source = readFileSync(new URL('../../native/container-init.c', import.meta.url), 'utf8');
  const keys = new Set<string>(BY_VARIABLE);
  for (const match of source.matchAll(/\bj(?:need|get|num|str|bool|strv|str_or|strv_of)\([^,()]+, "([A-Za-z]+)"/g)) keys.add(match[1]!);
  for (const key of NOT_PLAN) keys.delete(key);
  return keys;
}

function planKeys(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => planKeys(v, into));
  else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      into.add(key);
      planKeys(v, into);
    }
  }
  return into;
}

function fullSpec(): ContainerSpec {
  const spec = defaultSpec('/rootfs', ['sh']);
  spec.hostname = 'h';
  spec.domainname = 'd';
  spec.namespaces.push('user');
  spec.namespacePaths = { network: '/proc/1/ns/net' };
  spec.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.process.oomScoreAdj = 10;
  spec.process.terminal = true;
  spec.sysctl = { 'net.ipv4.ip_forward': '1' };
  spec.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], flags: [], syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1, valueTwo: 0 }] }] };
  spec.mounts = spec.mounts.filter((m) => m.type !== 'bind');
  return spec;
}

describe('the plan contract between plan.ts and container-init.c', () => {
  const cgroups = { version: 'v1' as const, procsFiles: ['/sys/fs/cgroup/pids/x/cgroup.procs'], views: [{ name: 'pids', path: '/sys/fs/cgroup/pids/x' }], devicesEnforced: true };
  const spec = fullSpec();
  const init = buildPlan(spec, {
    supervisor: 1, cgroups, rootfs: '/rootfs', waitForHost: true, terminal: { rows: 24, cols: 80 },
    prepare: [{ source: 'overlay', target: '/m', type: 'overlay', flags: 0, data: '', remountFlags: 0, isFile: false, propagation: [] }],
    runtime: { fifo: '/run/x/exec.fifo', consoleSocket: '/run/x.sock', detach: true },
  });
  const exec = buildExecPlan(spec, 42, cgroups, { consoleSocket: '/run/x.sock', detach: true });

  it('every key a plan carries is read by the helper', () => {
    const read = helperKeys();
    const written = planKeys({ ...init, exec });
    expect([...written].filter((k) => !read.has(k))).toEqual([]);
  });

  it('every key the helper reads is carried by a plan', () => {
    const written = planKeys({ ...init, exec });
    expect([...helperKeys()].filter((k) => !written.has(k))).toEqual([]);
  });
});

// The plan crosses from TypeScript to the C helper in one layout (src/container/plan-layout.ts):
// the header in the tree is the one it generates, TypeScript reads back what it writes, and a C
// program built from the generated decoders reads the same frame to the same values.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildExecPlan, buildPlan } from '../../src/container/plan.js';
import { ExecPlanLayout, HELPER_MESSAGES, helperFrame, InitPlanLayout, readHelperFrame, RuntimeStateLayout } from '../../src/container/plan-layout.js';
import { defaultSpec, type ContainerSpec } from '../../src/container/spec.js';
import { generateHelperHeader } from '../../src/container/wire-c.js';

const HEADER = new URL('../../native/helper-wire.h', import.meta.url);

function fullSpec(): ContainerSpec {
  const spec = defaultSpec('/rootfs', ['sh', '-c', 'echo ünïcode']);
  spec.hostname = 'h';
  spec.domainname = 'd';
  spec.namespaces.push('user');
  spec.namespacePaths = { network: '/proc/1/ns/net' };
  spec.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.process.oomScoreAdj = -10;
  spec.process.terminal = true;
  spec.process.user = { uid: 1000, gid: 1000, additionalGids: [10, 20] };
  spec.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2 ** 64 }];
  spec.sysctl = { 'net.ipv4.ip_forward': '1' };
  spec.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], flags: [], syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1, valueTwo: 0 }] }] };
  spec.mounts = spec.mounts.filter((m) => m.type !== 'bind');
  return spec;
}

const cgroups = { version: 'v1' as const, procsFiles: ['/sys/fs/cgroup/pids/x/cgroup.procs'], views: [{ name: 'pids', path: '/sys/fs/cgroup/pids/x' }], devicesEnforced: true };
const init = buildPlan(fullSpec(), {
  supervisor: 1, cgroups, rootfs: '/rootfs', waitForHost: true, terminal: { rows: 24, cols: 80 },
  prepare: [{ source: 'overlay', target: '/m', type: 'overlay', flags: 0, data: 'lowerdir=/a', remountFlags: 0, isFile: false, propagation: [0x40000] }],
  runtime: { fifo: '/run/x/exec.fifo', consoleSocket: '/run/x.sock', detach: true },
});

describe('the helper wire (plan-layout.ts → native/helper-wire.h)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-wire-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('native/helper-wire.h is the header the layouts generate (npm run build writes it)', () => {
    expect(readFileSync(HEADER, 'utf8')).toBe(generateHelperHeader(HELPER_MESSAGES, 'src/container/plan-layout.ts'));
  });

  it('TypeScript reads back every field it writes; RLIM_INFINITY saturates to all ones', () => {
    const back = readHelperFrame(InitPlanLayout, helperFrame(InitPlanLayout, init));
    expect(back).toEqual({ ...init, process: { ...init.process, rlimits: [{ resource: 7, soft: 1024, hard: -1 }] } });
    const exec = buildExecPlan(fullSpec(), 42, cgroups, { detach: false });
    expect(readHelperFrame(ExecPlanLayout, helperFrame(ExecPlanLayout, exec))).toEqual({ ...exec, process: { ...exec.process, rlimits: [{ resource: 7, soft: 1024, hard: -1 }] } });
  });

  it('refuses a frame of another kind, a damaged one, and a value the layout does not allow', () => {
    const frame = helperFrame(InitPlanLayout, init);
    expect(() => readHelperFrame(ExecPlanLayout, frame)).toThrow(/not a exec_plan/);
    expect(() => readHelperFrame(InitPlanLayout, frame.subarray(0, frame.length - 1))).toThrow();
    const otherBuild = Buffer.from(frame);
    otherBuild.writeUInt32LE((otherBuild.readUInt32LE(4) ^ 1) >>> 0, 4);
    expect(() => readHelperFrame(InitPlanLayout, otherBuild)).toThrow(/another build/);
    expect(() => helperFrame(InitPlanLayout, { ...init, rootfs: 'a\0b' })).toThrow(/NUL/);
    expect(() => helperFrame(InitPlanLayout, { ...init, cloneFlags: 1.5 })).toThrow(/not an integer/);
    expect(() => helperFrame(InitPlanLayout, { ...init, cloneFlags: -(2 ** 64) })).toThrow(/below the 64-bit range/);
  });

  it('the C decoders read the frame TypeScript wrote, field for field', () => {
    // A small program over the generated header: what the helper would see.
    const program = path.join(dir, 'read-plan');
    writeFileSync(`${program}.c`, `#include <stdio.h>
#include <unistd.h>
#include "${new URL(HEADER).pathname}"
int main(void) {
  static unsigned char buf[1 << 20];
  size_t n = (size_t)read(0, buf, sizeof buf);
  init_plan p;
  if (read_init_plan(buf, n, &p) < 0) return 2;
  printf("%lld %s %s|%zu|%s %s|%lld %lld %lld|%s|%d %lld|%lld|%s %d|%zu %s %s %lld %lld|%s|%d %lld %lld|%s|%s\\n",
    p.supervisor, p.rootfs, p.prepare[0].data, p.n_mounts, p.process.args[2], p.process.args[3] ? "?" : "NULL",
    p.process.user.uid, p.process.user.additional_gids[1], p.process.rlimits[0].hard, p.hostname,
    p.process.has_oom_score_adj, p.process.oom_score_adj, p.process.capabilities.bounding,
    p.runtime.console_socket, p.runtime.detach, p.process.seccomp.n_rules, p.process.seccomp.rules[0].names[1],
    p.id_maps.uid, p.process.join_namespaces[0].flag, p.prepare[0].propagation[0], p.sysctl[0].path,
    p.process.has_terminal, p.process.terminal.rows, p.process.terminal.cols, p.domainname, p.readonly_after[0] ? p.readonly_after[0] : "-");
  return 0;
}
`);
    execFileSync('cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-o', program, `${program}.c`]);
    const out = execFileSync(program, { input: helperFrame(InitPlanLayout, init), encoding: 'utf8' });
    const p = init.process;
    expect(out.trim()).toBe([
      `${init.supervisor} ${init.rootfs} ${init.prepare[0]!.data}`, `${init.mounts.length}`, `${p.args[2]} NULL`,
      `${p.user.uid} ${p.user.additionalGids[1]} -1`, init.hostname,
      `1 ${p.oomScoreAdj}`, `${p.capabilities.bounding}`, `${init.runtime!.consoleSocket} 1`,
      `${p.seccomp!.rules.length} write ${init.idMaps!.uid.trim()}\n ${p.joinNamespaces[0]!.flag} ${init.prepare[0]!.propagation[0]}`, init.sysctl[0]!.path,
      `1 ${p.terminal!.rows} ${p.terminal!.cols}`, init.domainname, init.readonlyAfter[0] ?? '-',
    ].join('|'));
  });

  it('the runtime state the C fast path reads carries the record whole', () => {
    const state = { pid: 7, startTime: '123', cgroupDirs: ['/sys/fs/cgroup/pids/tsvmm/x'], hooks: { startContainer: false, poststart: true, poststop: false },
      oci: { created: '{"status":"created"}', running: '{"status":"running"}', paused: '{"status":"paused"}', stopped: '{"status":"stopped"}' }, record: '{"id":"x"}' };
    expect(readHelperFrame(RuntimeStateLayout, helperFrame(RuntimeStateLayout, state))).toEqual(state);
  });
});

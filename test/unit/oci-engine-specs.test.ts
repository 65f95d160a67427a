// Every config.json that containerd, Docker, podman and Kubernetes' CRI plugin wrote on this
// project's machines (test/fixtures/oci-engine-specs, copied from what each engine handed runc)
// is read the way runc reads it: unknown properties ignored, each field either honoured or, where
// runc ignores it, ignored. The host paths they name (overlay roots, bind sources) are re-made
// under a temporary directory, since they belonged to the engines' own state.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/container/oci.js';
import { buildPlan, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWUTS } from '../../src/container/plan.js';
import { seccompAction } from '../../src/container/seccomp.js';
import type { ContainerSpec } from '../../src/container/spec.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/oci-engine-specs/', import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Config = Record<string, any>;

/** A bundle holding the engine's config.json, its absolute host paths moved under the bundle. */
function engineBundle(file: string): { dir: string; config: Config; spec: ContainerSpec } {
  const config = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as Config;
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-engine-bundle-'));
  const host = (p: string) => path.join(dir, 'host', p);
  if (path.isAbsolute(config.root.path)) config.root.path = host(config.root.path);
  mkdirSync(path.resolve(dir, config.root.path), { recursive: true });
  for (const m of config.mounts as Config[]) {
    if (!(m.options ?? []).some((o: string) => o === 'bind' || o === 'rbind')) continue;
    m.source = host(m.source);
    const isDir = m.destination === '/dev/shm';
    mkdirSync(isDir ? m.source : path.dirname(m.source), { recursive: true });
    if (!isDir) writeFileSync(m.source, '');
  }
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return { dir, config, spec: loadBundle(dir) };
}

const cgroups = { version: 'v1' as const, procsFiles: [], views: [], devicesEnforced: true };
const plan = (spec: ContainerSpec) => buildPlan(spec, { supervisor: 1, cgroups, rootfs: spec.root.path, prepare: [], waitForHost: true });

describe('config.json written by container engines', () => {
  it('containerd (ctr run): cpu shares, rlimits, the device rules', () => {
    const { spec } = engineBundle('containerd-ctr-run.json');
    expect(spec.process.args).toEqual(['true']);
    expect(spec.resources.cpuShares).toBe(1024);
    expect(spec.cgroupsPath).toBe('/s5/s5-c5');
    expect(spec.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 }]);
    expect(spec.deviceRules).toHaveLength(10);
    expect(spec.namespacePaths).toEqual({});
    const p = plan(spec);
    expect(p.cloneFlags & (CLONE_NEWPID | CLONE_NEWNET)).toBe(CLONE_NEWPID | CLONE_NEWNET);
    expect(p.process.joinNamespaces).toEqual([]);
    expect(p.process.seccomp).toBeUndefined();
  });

  it('Docker: its networking prestart hook, namespaced sysctls, seccomp, zero values ignored', () => {
    const { spec, config } = engineBundle('docker-run-user-network.json');
    expect(spec.hooks?.prestart).toEqual([{ path: '/proc/3954/exe', args: config.hooks.prestart[0].args, env: [], timeout: undefined }]);
    expect(spec.hooks?.poststop).toEqual([]);
    expect(spec.sysctl).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' });
    expect(spec.process.oomScoreAdj).toBe(0);
    // cpu.shares 0, blockIO.weight 0 and disableOOMKiller false ask for nothing, as runc reads them.
    expect(spec.resources).toEqual({});
    expect(spec.seccomp?.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(spec.seccomp?.syscalls.find((s) => s.names.includes('clone'))?.args).toEqual([{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 2114060288, valueTwo: 0 }]);
    const p = plan(spec);
    expect(p.sysctl).toEqual([
      { path: '/proc/sys/net/ipv4/ip_unprivileged_port_start', value: '0' },
      { path: '/proc/sys/net/ipv4/ping_group_range', value: '0 2147483647' },
    ]);
    expect(p.process.seccomp?.defaultAction).toBe(seccompAction('SCMP_ACT_ERRNO', 1));
    expect(p.process.seccomp?.architectures).toEqual([0xc000003e, 0x40000003, 0x4000003e]);
    expect(p.process.seccomp?.rules.find((r) => r.names[0] === 'clone3')?.action).toBe(0x00050000 | 38);
    expect(p.process.oomScoreAdj).toBe(0);
  });

  it('podman: a terminal, umask, pids limit, seccomp with errno returns', () => {
    const { spec } = engineBundle('podman-run.json');
    expect(spec.process.terminal).toBe(true);
    expect(spec.process.umask).toBe(18);
    expect(spec.resources.pids).toBe(2048);
    expect(spec.seccomp?.defaultErrnoRet).toBe(38);
    expect(spec.annotations?.['io.container.manager']).toBe('libpod');
    expect(plan(spec).process.seccomp?.defaultAction).toBe(0x00050000 | 38);
  });

  it('Kubernetes pod sandbox: no network or uts namespace of its own, a read-only root, cpu shares 2', () => {
    const { spec } = engineBundle('kubernetes-cri-pod-sandbox.json');
    expect(spec.namespaces).toEqual(['pid', 'ipc', 'mount']);
    expect(spec.root.readonly).toBe(true);
    expect(spec.resources.cpuShares).toBe(2);
    expect(plan(spec).cloneFlags & (CLONE_NEWNET | CLONE_NEWUTS)).toBe(0);
  });

  it('Kubernetes app container: joins the sandbox namespaces by path, memory with swap', () => {
    const { spec } = engineBundle('kubernetes-cri-container.json');
    expect(spec.namespacePaths).toEqual({ pid: '/proc/17351/ns/pid', ipc: '/proc/17351/ns/ipc', uts: '/proc/17351/ns/uts', network: '/proc/17351/ns/net' });
    expect(spec.resources).toEqual({ memory: 67108864, memorySwap: 67108864 });
    const p = plan(spec);
    expect(p.cloneFlags & (CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)).toBe(0);
    expect(p.process.joinNamespaces.map((j) => j.path)).toEqual(['/proc/17351/ns/pid', '/proc/17351/ns/ipc', '/proc/17351/ns/uts', '/proc/17351/ns/net']);
  });
});

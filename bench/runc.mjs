#!/usr/bin/env node
// tsvmm-runc against runc under a real containerd: `ctr run --rm` of /bin/true in the busybox
// rootfs (scripts/build-busybox-rootfs.sh), through the runc shim (io.containerd.runc.v2) with
// --runc-binary bin/tsvmm-runc or runc. That is what a container start costs an engine end to
// end: the shim calls the runtime for create, start, (state,) delete, each a process of its own.
//
//   node bench/runc.mjs [--runs R] [--warmup W] [--json]
//
// A private containerd (its own root, state and socket in a temporary directory) serves both.
// The two run alternately, in a rotating order, so that the drift of a shared, noisy machine hits
// both alike; the ratio is taken within one invocation. Target (issue 14): at most 1.2x runc.
// Each round also times `--version` of both, the start-up every one of the shim's calls pays.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fail, parseOptions, ratio, removeEmptyCgroups, ROOT, summarize, table, fmt, fmtRatio } from './lib.mjs';

const USAGE = 'usage: node bench/runc.mjs [--runs R] [--warmup W] [--json]';
const TARGET = 1.2;
let runs = 20;
let warmup = 2;
let json = false;
parseOptions(process.argv.slice(2), USAGE, (name, read) => {
  if (name === '--runs') runs = read.integer(read.raw(), 1);
  else if (name === '--warmup') warmup = read.integer(read.raw(), 0);
  else if (name === '--json') json = true;
  else return false;
  return true;
});

const log = (m) => { if (!json) process.stderr.write(`${m}\n`); };
if (process.getuid() !== 0) fail('containerd and both runtimes need root');
for (const binary of ['containerd', 'ctr', 'runc']) {
  if (spawnSync('sh', ['-c', `command -v ${binary}`]).status !== 0) fail(`${binary} is not installed (sh scripts/ensure-test-deps.sh installs it from Debian)`);
}
if (!existsSync(path.join(ROOT, 'dist/bundle/runc.js'))) fail('dist/ is missing: run `npm run build` first');
const bundle = spawnSync('sh', [path.join(ROOT, 'scripts/build-busybox-rootfs.sh')], { encoding: 'utf8' });
if (bundle.status !== 0) fail(`no busybox rootfs: ${bundle.stderr.trim()}`);
const rootfs = path.join(bundle.stdout.trim(), 'rootfs');

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-bench-runc-'));
const address = path.join(dir, 'containerd.sock');
writeFileSync(path.join(dir, 'config.toml'), [
  'version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
  '[grpc]', `  address = "${address}"`, '[ttrpc]', `  address = "${address}.ttrpc"`,
].join('\n'));
const logFile = openSync(path.join(dir, 'log'), 'w');
const containerd = spawn('containerd', ['--config', path.join(dir, 'config.toml'), '--log-level', 'error'], { stdio: ['ignore', logFile, logFile] });
// ctr puts each container's cgroup under /NAMESPACE: this run's own, removed at the end.
const namespace = `tsvmm-bench-runc-${process.pid}`;
const stop = () => {
  containerd.kill('SIGTERM');
  removeEmptyCgroups(namespace);
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', stop);
for (let i = 0; !existsSync(address); i++) {
  if (i > 300 || containerd.exitCode !== null) fail('containerd did not start');
  await new Promise((resolve) => setTimeout(resolve, 100));
}

const contenders = [
  { id: 'runc', name: 'runc', binary: spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).stdout.trim() },
  { id: 'tsvmm', name: 'tsvmm-runc', binary: path.join(ROOT, 'bin/tsvmm-runc') },
];

let serial = 0;
function once(contender) {
  const id = `bench-${contender.id}-${process.pid}-${serial++}`;
  const start = performance.now();
  const r = spawnSync('ctr', ['-a', address, '-n', namespace, 'run', '--rm', '--rootfs', '--runtime', 'io.containerd.runc.v2', '--runc-binary', contender.binary, rootfs, id, '/bin/true'], { encoding: 'utf8', timeout: 60_000 });
  const ms = performance.now() - start;
  if (r.status !== 0) fail(`${contender.name}: ctr run exited ${r.status}: ${(r.stderr ?? '').trim()}`);
  return ms;
}

/** One verb's floor: the runtime started to print its version, which every call of the shim pays. */
function version(contender) {
  const start = performance.now();
  const r = spawnSync(contender.binary, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) fail(`${contender.name} --version exited ${r.status}`);
  return performance.now() - start;
}

log(`warming up (${warmup} each), then ${runs} alternating rounds of ctr run --rm /bin/true`);
for (let i = 0; i < warmup; i++) for (const c of contenders) once(c);
const samples = Object.fromEntries(contenders.map((c) => [c.id, []]));
const versions = Object.fromEntries(contenders.map((c) => [c.id, []]));
for (let round = 0; round < runs; round++) {
  const order = round % 2 ? [...contenders].reverse() : contenders;
  for (const c of order) {
    samples[c.id].push(once(c));
    versions[c.id].push(version(c));
  }
}
const stats = Object.fromEntries(contenders.map((c) => [c.id, summarize(samples[c.id])]));
const starts = Object.fromEntries(contenders.map((c) => [c.id, summarize(versions[c.id])]));
const r = ratio(stats.tsvmm, stats.runc);
if (json) {
  const strip = (all) => Object.fromEntries(Object.entries(all).map(([k, s]) => [k, { ...s, samples: undefined }]));
  console.log(JSON.stringify({ runs, ms: strip(stats), versionMs: strip(starts), ratio: r, target: TARGET }));
} else {
  console.log(table(['contender', 'median ms', 'IQR ms', 'min-max ms', '--version median ms'], contenders.map((c) => {
    const s = stats[c.id];
    return [c.name, fmt(s.median, 1), `${fmt(s.q1, 1)}-${fmt(s.q3, 1)}`, `${fmt(s.min, 1)}-${fmt(s.max, 1)}`, fmt(starts[c.id].median, 1)];
  })));
  console.log(`\ntsvmm-runc / runc: ${fmtRatio(r)} (target at most ${TARGET})`);
}
process.exit(0);

#!/usr/bin/env node
// tsvmm-runc against runc under a real containerd: `ctr run --rm` of /bin/true in the busybox
// rootfs (scripts/build-busybox-rootfs.sh), through the runc shim (io.containerd.runc.v2) with
// --runc-binary bin/tsvmm-runc or runc. That is what a container start costs an engine end to
// end: the shim calls the runtime for create, start, (state,) delete, each a process of its own.
// tsvmm-runc runs twice: as installed (its create served by the warm create server of the root,
// src/runtime/warm-server.ts, after the first) and cold (TSVMM_RUNC_WARM=0: every create starts
// Node), the latter through a one-line sh wrapper that sets the variable (the shim passes no
// environment of ours), which adds an sh start to each of its verbs.
//
//   node bench/runc.mjs [--runs R] [--warmup W] [--json]
//
// A private containerd (its own root, state and socket in a temporary directory) serves all.
// The three run alternately, in a rotating order, so that the drift of a shared, noisy machine hits
// all alike; the ratio is taken within one invocation. Target (issue 14): at most 1.2x runc.
// Each round also times `--version` of each, the start-up every one of the shim's calls pays, and
// each verb the shim runs (create, state, start, delete) called directly on one bundle (made by
// `runc spec`, /bin/true in the same rootfs), with `node -e 0` beside them: issue 12's target is
// every tsvmm-runc verb at most 1.2x `node -e 0`.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
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
if (!existsSync(path.join(ROOT, 'dist/bundle/runc.cjs'))) fail('dist/ is missing: run `npm run build` first');
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

const coldWrapper = path.join(dir, 'tsvmm-runc-cold');
writeFileSync(coldWrapper, `#!/bin/sh\nTSVMM_RUNC_WARM=0 exec ${path.join(ROOT, 'bin/tsvmm-runc')} "$@"\n`, { mode: 0o755 });
const contenders = [
  { id: 'runc', name: 'runc', binary: spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).stdout.trim() },
  { id: 'tsvmm', name: 'tsvmm-runc', binary: path.join(ROOT, 'bin/tsvmm-runc') },
  { id: 'cold', name: 'tsvmm-runc, cold', binary: coldWrapper },
];
const ours = contenders.filter((c) => c.id !== 'runc');

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

/** The verbs one at a time, as the shim runs them, each timed spawn to exit. */
const VERBS = ['create', 'state', 'start', 'delete'];
const verbBundle = path.join(dir, 'bundle');
mkdirSync(verbBundle);
if (spawnSync('runc', ['spec', '--bundle', verbBundle]).status !== 0) fail('runc spec failed');
const verbSpec = JSON.parse(readFileSync(path.join(verbBundle, 'config.json'), 'utf8'));
verbSpec.root = { path: rootfs, readonly: true };
verbSpec.process.args = ['/bin/true'];
verbSpec.process.terminal = false;
const verbErrors = path.join(dir, 'verb.err');
function timed(argv) {
  // Not pipes: the container's init inherits the runtime's stdio and keeps it until it ends.
  const err = openSync(verbErrors, 'w');
  const start = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', err] });
  const ms = performance.now() - start;
  closeSync(err);
  if (r.status !== 0) fail(`${argv.join(' ')} exited ${r.status}: ${readFileSync(verbErrors, 'utf8').trim()}`);
  return ms;
}
function verbs(contender) {
  const id = `bench-verb-${contender.id}-${process.pid}-${serial++}`;
  verbSpec.linux.cgroupsPath = `/${namespace}/${id}`;
  writeFileSync(path.join(verbBundle, 'config.json'), JSON.stringify(verbSpec));
  const runtime = [contender.binary, '--root', path.join(dir, `root-${contender.id}`)];
  const pidFile = path.join(dir, 'verb.pid');
  const ms = { create: timed([...runtime, 'create', '--bundle', verbBundle, '--pid-file', pidFile, id]) };
  ms.state = timed([...runtime, 'state', id]);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  ms.start = timed([...runtime, 'start', id]);
  // delete wants it stopped: wait for /bin/true to end (gone, or a zombie of whoever adopted it).
  for (let i = 0; ; i++) {
    let stat = '';
    try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { break; }
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') break;
    if (i > 5000) fail(`${contender.name}: the container's /bin/true did not end`);
    spawnSync('sleep', ['0.002']);
  }
  ms.delete = timed([...runtime, 'delete', id]);
  return ms;
}
const verbSamples = Object.fromEntries(contenders.map((c) => [c.id, Object.fromEntries(VERBS.map((v) => [v, []]))]));
const nodeSamples = [];

log(`warming up (${warmup} each), then ${runs} alternating rounds of ctr run --rm /bin/true`);
// The verbs too: their root's first create is cold and starts its warm create server.
for (let i = 0; i < warmup; i++) for (const c of contenders) { once(c); verbs(c); }
const samples = Object.fromEntries(contenders.map((c) => [c.id, []]));
const versions = Object.fromEntries(contenders.map((c) => [c.id, []]));
for (let round = 0; round < runs; round++) {
  const order = [...contenders.slice(round % contenders.length), ...contenders.slice(0, round % contenders.length)];
  for (const c of order) {
    samples[c.id].push(once(c));
    versions[c.id].push(version(c));
    const ms = verbs(c);
    for (const v of VERBS) verbSamples[c.id][v].push(ms[v]);
  }
  nodeSamples.push(timed(['node', '-e', '0']));
}
const stats = Object.fromEntries(contenders.map((c) => [c.id, summarize(samples[c.id])]));
const starts = Object.fromEntries(contenders.map((c) => [c.id, summarize(versions[c.id])]));
const ratios = Object.fromEntries(ours.map((c) => [c.id, ratio(stats[c.id], stats.runc)]));
const nodeStats = summarize(nodeSamples);
const verbStats = Object.fromEntries(VERBS.map((v) => [v, Object.fromEntries(contenders.map((c) => [c.id, summarize(verbSamples[c.id][v])]))]));
if (json) {
  const strip = (all) => Object.fromEntries(Object.entries(all).map(([k, s]) => [k, { ...s, samples: undefined }]));
  const verbJson = Object.fromEntries(VERBS.map((v) => [v, {
    ...strip(verbStats[v]),
    vsRunc: ratio(verbStats[v].tsvmm, verbStats[v].runc), vsNode: ratio(verbStats[v].tsvmm, nodeStats), coldVsRunc: ratio(verbStats[v].cold, verbStats[v].runc),
  }]));
  console.log(JSON.stringify({ runs, load: loadavg(), ms: strip(stats), versionMs: strip(starts), ratio: ratios.tsvmm, coldRatio: ratios.cold, target: TARGET, nodeMs: { ...nodeStats, samples: undefined }, verbs: verbJson }));
} else {
  console.log(table(['contender', 'median ms', 'IQR ms', 'min-max ms', '--version median ms'], contenders.map((c) => {
    const s = stats[c.id];
    return [c.name, fmt(s.median, 1), `${fmt(s.q1, 1)}-${fmt(s.q3, 1)}`, `${fmt(s.min, 1)}-${fmt(s.max, 1)}`, fmt(starts[c.id].median, 1)];
  })));
  console.log(`\ntsvmm-runc / runc: ${fmtRatio(ratios.tsvmm)} (target at most ${TARGET}); cold (TSVMM_RUNC_WARM=0) / runc: ${fmtRatio(ratios.cold)}`);
  console.log(`load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  console.log(table(['verb (direct)', 'runc ms', 'tsvmm-runc ms', 'vs runc', 'vs node -e 0', 'cold ms', 'cold vs runc'], [
    ...VERBS.map((v) => [v, fmt(verbStats[v].runc.median, 1), fmt(verbStats[v].tsvmm.median, 1), fmtRatio(ratio(verbStats[v].tsvmm, verbStats[v].runc)),
      fmtRatio(ratio(verbStats[v].tsvmm, nodeStats)), fmt(verbStats[v].cold.median, 1), fmtRatio(ratio(verbStats[v].cold, verbStats[v].runc))]),
    ['node -e 0', '', fmt(nodeStats.median, 1), '', '', '', ''],
  ]));
}
process.exit(0);

#!/usr/bin/env node
// Container start-to-exit: /bin/true in the busybox OCI bundle (scripts/build-busybox-rootfs.sh),
// run by tsvmm and by runc on the same bundle.
//
//   node bench/container.mjs [--runs R] [--warmup W] [--json]
//
// Contenders, each timed from spawn (or, for the library, from Container.run) to exit:
//   runc          `runc run --bundle B ID`
//   tsvmm CLI     `bin/tsvmm.js container run --bundle B --name ID` (the program, as `tsvmm`)
//   tsvmm library `Container.run({ bundle: B, name: ID })` then `wait()`, in this process
//   node -e 0     Node's own start-up, which every Node CLI pays (a reference, not a contender);
//                 also without NODE_EXTRA_CA_CERTS when it is set, as tsvmm starts Node
// They run interleaved, one of each per round in a rotating order, so that the drift of a shared,
// noisy machine hits them all alike; ratios are taken within one invocation. Each process's peak
// RSS comes from a second, untimed run under /usr/bin/time. Targets (issue 12): the CLI within
// 1.3x `node -e 0`, the library within 0.5x runc.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  contenderFailed, fail, fmt, fmtRatio, nodeReferences, parseOptions, ratio, readRss, ROOT, runOnce, summarize, table, TIME, TSVMM_BIN,
} from './lib.mjs';

const BUNDLE_SCRIPT = path.join(ROOT, 'scripts/build-busybox-rootfs.sh');
const DEPS_SCRIPT = path.join(ROOT, 'scripts/install-container-bench-deps.sh');
const TARGET_CLI_VS_NODE = 1.3;
const TARGET_LIBRARY_VS_RUNC = 0.5;
const USAGE = 'usage: node bench/container.mjs [--runs R] [--warmup W] [--json]';
const TIMEOUT_MS = 60_000;

function parseArgs(argv) {
  const opts = { runs: 20, warmup: 3, json: false };
  parseOptions(argv, USAGE, (name, read) => {
    if (name === '--runs') opts.runs = read.integer(read.raw(), 1);
    else if (name === '--warmup') opts.warmup = read.integer(read.raw(), 0);
    else if (name === '--json') opts.json = true;
    else return false;
    return true;
  });
  return opts;
}

/** The busybox bundle, runc, and a copy of the bundle's config whose command is /bin/true. */
function prepare(log) {
  if (process.getuid?.() !== 0) fail('containers need root');
  if (!existsSync(path.join(ROOT, 'dist/bundle/index.js'))) fail('dist/ is missing: run `npm run build` first');
  if (!existsSync(path.join(ROOT, 'build/Release/container-init'))) fail('build/Release/container-init is missing: run `npm install` first');
  const built = spawnSync('sh', [BUNDLE_SCRIPT], { encoding: 'utf8' });
  if (built.status !== 0) fail(`could not build the busybox bundle:\n${built.stderr}`);
  const bundle = built.stdout.trim();
  const deps = spawnSync('sh', [DEPS_SCRIPT], { encoding: 'utf8' });
  if (deps.status !== 0) fail(`runc is needed:\n${deps.stderr}`);
  const runc = spawnSync('runc', ['--version'], { encoding: 'utf8' });
  if (runc.status !== 0) fail('runc does not run');
  log(`bundle ${path.relative(ROOT, bundle)}; ${runc.stdout.split('\n')[0]}`);

  // Same rootfs, same config.json but for the command: both runtimes run exactly this bundle.
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-bench-bundle-'));
  const config = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'));
  config.process.args = ['/bin/true'];
  config.root.path = path.join(bundle, 'rootfs');
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return { bundle: dir, runcVersion: runc.stdout.split('\n')[0].trim() };
}

/** Spawn to exit, in ms; ends the bench, quoting the output, unless the status is 0. */
async function timeProcess(contender, argv) {
  const result = await runOnce(argv, { lines: [], timeoutMs: TIMEOUT_MS });
  if (result.code !== 0) contenderFailed({ name: contender }, 'to run /bin/true', result);
  return result.exitMs;
}

/** Peak RSS in KiB of one more run of argv under /usr/bin/time (null without it). */
async function peakRss(contender, argv) {
  if (!existsSync(TIME)) return null;
  const file = path.join(tmpdir(), `tsvmm-bench-rss-${process.pid}`);
  const result = await runOnce(argv, { lines: [], timeoutMs: TIMEOUT_MS, rssFile: file });
  if (result.code !== 0) contenderFailed({ name: contender }, 'to run /bin/true', result);
  const kib = readRss(file);
  rmSync(file, { force: true });
  return kib;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (m) => { if (!opts.json || process.stderr.isTTY) process.stderr.write(`bench: ${m}\n`); };
  const { bundle, runcVersion } = prepare(log);
  const { Container } = await import(path.join(ROOT, 'dist/bundle/index.js'));
  let serial = 0;
  const id = (prefix) => `${prefix}-${process.pid}-${serial++}`;

  const runc = () => ['runc', 'run', '--bundle', bundle, id('bench-runc')];
  const cli = () => [TSVMM_BIN, 'container', 'run', '--bundle', bundle, '--name', id('bench-cli')];
  const contenders = [
    { id: 'runc', name: 'runc run', command: `runc run --bundle ${bundle} ID`, run: () => timeProcess('runc', runc()), rss: () => peakRss('runc', runc()) },
    {
      id: 'cli', name: 'tsvmm container run (CLI)', command: `bin/tsvmm.js container run --bundle ${bundle} --name ID`,
      run: () => timeProcess('tsvmm CLI', cli()), rss: () => peakRss('tsvmm CLI', cli()),
    },
    {
      id: 'library', name: 'tsvmm Container.run (library)', command: `Container.run({ bundle: '${bundle}', name: ID }).wait()`,
      run: async () => {
        const started = performance.now();
        const container = Container.run({ bundle, name: id('bench-lib') });
        const outcome = await container.wait();
        const ms = performance.now() - started;
        if (outcome.kind !== 'exited' || outcome.code !== 0) fail(`tsvmm library: ${JSON.stringify(outcome)}\n${container.output}`);
        return ms;
      },
    },
    ...nodeReferences().map((r) => ({
      id: r.id, name: r.name, command: r.command().join(' ').replace(process.execPath, 'node'),
      run: () => timeProcess(r.id, r.command()), rss: () => peakRss(r.id, r.command()),
    })),
  ];
  const samples = Object.fromEntries(contenders.map((c) => [c.id, []]));
  const rss = Object.fromEntries(contenders.map((c) => [c.id, []]));
  try {
    for (let round = 0; round < opts.warmup + opts.runs; round++) {
      const warm = round < opts.warmup;
      const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]);
      if (round === 0 || round === opts.warmup || (round - opts.warmup + 1) % 5 === 0) {
        log(warm ? 'warm-up' : `round ${round - opts.warmup + 1}/${opts.runs}`);
      }
      for (const c of order) {
        const ms = await c.run();
        if (!warm) samples[c.id].push(ms);
      }
      if (!warm) for (const c of order) if (c.rss) rss[c.id].push(await c.rss());
    }
  } finally {
    rmSync(bundle, { recursive: true, force: true });
  }

  const stats = Object.fromEntries(contenders.map((c) => [c.id, summarize(samples[c.id])]));
  const rssMiB = Object.fromEntries(contenders.map((c) => [c.id, summarize(rss[c.id].map((v) => (v === null ? null : v / 1024)))]));
  // A ratio of medians, and the range of the per-round ratios (both from the same rounds).
  const over = (a, b) => ratio(stats[a], stats[b]);
  const strip = (all) => Object.fromEntries(Object.entries(all).map(([k, s]) => [k, s && { ...s, samples: undefined }]));
  const results = {
    config: { runs: opts.runs, warmup: opts.warmup, runc: runcVersion, node: process.version, workload: '/bin/true in the busybox bundle' },
    commands: Object.fromEntries(contenders.map((c) => [c.id, c.command.replaceAll(bundle, 'BUNDLE')])),
    ms: strip(stats),
    peakRssMiB: strip(rssMiB),
    ratios: {
      cliOverRunc: over('cli', 'runc'), libraryOverRunc: over('library', 'runc'), nodeOverRunc: over('node', 'runc'), cliOverNode: over('cli', 'node'),
      cliOverNodeBare: stats.nodeBare ? over('cli', 'nodeBare') : null,
    },
  };
  const target = (description, r, limit) => ({ description, limit, ratio: r.ofMedians, met: r.ofMedians <= limit });
  results.targets = [
    target(`tsvmm container run (CLI) <= ${TARGET_CLI_VS_NODE}x node -e 0`, results.ratios.cliOverNode, TARGET_CLI_VS_NODE),
    target(`Container.run (library) <= ${TARGET_LIBRARY_VS_RUNC}x runc`, results.ratios.libraryOverRunc, TARGET_LIBRARY_VS_RUNC),
  ];
  if (opts.json) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  const f = (n) => fmt(n, 1);
  const r = (x) => `${fmtRatio(x)} (ratio of medians, then the range of the per-round ratios)`;
  console.log([
    `Container start to exit: ${results.config.workload}; ${opts.runs} rounds (+${opts.warmup} warm-up), contenders interleaved`,
    `${runcVersion}, Node ${process.version}`,
    '',
    table(['contender', 'median ms', 'IQR ms', 'min-max ms', 'vs runc', 'vs node -e 0', 'peak RSS MiB'], contenders.map((c) => {
      const s = stats[c.id];
      return [c.name, f(s.median), `${f(s.q1)}-${f(s.q3)}`, `${f(s.min)}-${f(s.max)}`, `${fmt(s.median / stats.runc.median, 2)}x`,
        `${fmt(s.median / stats.node.median, 2)}x`, rssMiB[c.id] ? f(rssMiB[c.id].median) : '- (in this process)'];
    })),
    '',
    `tsvmm CLI / runc:      ${r(results.ratios.cliOverRunc)}`,
    `tsvmm library / runc:  ${r(results.ratios.libraryOverRunc)}`,
    `node -e 0 / runc:      ${r(results.ratios.nodeOverRunc)}`,
    `tsvmm CLI / node -e 0: ${r(results.ratios.cliOverNode)}`,
    ...(results.ratios.cliOverNodeBare ? [`tsvmm CLI / node -e 0 without NODE_EXTRA_CA_CERTS (set here; tsvmm starts Node without it): ${r(results.ratios.cliOverNodeBare)}`] : []),
    '',
    'Targets (ratios of medians):',
    ...results.targets.map((t) => `  ${t.met ? 'MET ' : 'MISS'}  ${t.description}: ${t.ratio.toFixed(2)}x`),
    '',
    'Commands (BUNDLE: a copy of .cache/busybox-bundle/config.json running /bin/true on its rootfs):',
    ...contenders.map((c) => `  ${c.name}: ${results.commands[c.id]}`),
  ].join('\n'));
}

await main();

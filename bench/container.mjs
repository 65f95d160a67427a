#!/usr/bin/env node
// Container start-to-exit: /bin/true in the busybox OCI bundle (scripts/build-busybox-rootfs.sh),
// run by tsvmm and by runc on the same bundle.
//
//   node bench/container.mjs [--runs R] [--warmup W] [--json]
//
// Contenders, each timed from spawn (or, for the library, from Container.run) to exit:
//   runc          `runc run --bundle B ID`
//   tsvmm CLI     `node bin/tsvmm.js container run --bundle B --name ID`
//   tsvmm library `Container.run({ bundle: B, name: ID })` then `wait()`, in this process
//   node -e 0     Node's own start-up, which every Node CLI pays (a reference, not a contender)
// They run interleaved, one of each per round in a rotating order, so that the drift of a shared,
// noisy machine hits them all alike; ratios are taken within one invocation. Each process's peak
// RSS comes from a second, untimed run under /usr/bin/time. Targets (issue 12): the CLI within
// 1.3x `node -e 0`, the library within 0.5x runc.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE_SCRIPT = path.join(ROOT, 'scripts/build-busybox-rootfs.sh');
const DEPS_SCRIPT = path.join(ROOT, 'scripts/install-container-bench-deps.sh');
const TSVMM = path.join(ROOT, 'bin/tsvmm.js');
const TIME = '/usr/bin/time';
const TARGET_CLI_VS_NODE = 1.3;
const TARGET_LIBRARY_VS_RUNC = 0.5;

function parseArgs(argv) {
  const opts = { runs: 20, warmup: 3, json: false };
  const usage = 'usage: node bench/container.mjs [--runs R] [--warmup W] [--json]';
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split('=', 2);
    const value = () => {
      const v = inline ?? argv[++i];
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) fail(`${name} wants a non-negative integer, got ${JSON.stringify(v)}`);
      return n;
    };
    if (name === '--runs') opts.runs = Math.max(1, value());
    else if (name === '--warmup') opts.warmup = value();
    else if (name === '--json') opts.json = true;
    else if (name === '--help' || name === '-h') { console.log(usage); process.exit(0); }
    else fail(`unknown argument ${JSON.stringify(argv[i])}\n${usage}`);
  }
  return opts;
}

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
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

/** Peak RSS in KiB of one more run of argv under /usr/bin/time (null without it). */
async function peakRss(contender, argv) {
  if (!existsSync(TIME)) return null;
  const file = path.join(tmpdir(), `tsvmm-bench-rss-${process.pid}`);
  await timeProcess(contender, [TIME, '-f', '%M', '-o', file, ...argv]);
  const kib = Number(readFileSync(file, 'utf8').trim().split('\n').pop());
  rmSync(file, { force: true });
  return Number.isFinite(kib) && kib > 0 ? kib : null;
}

/** Spawn to exit, in ms; fails the bench, quoting the output, on a non-zero status. */
function timeProcess(contender, argv) {
  return new Promise((resolve) => {
    let out = '';
    const started = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', (error) => fail(`${contender}: ${error.message}`));
    child.on('exit', (code, signal) => {
      const ms = performance.now() - started;
      if (code !== 0) fail(`${contender} did not exit with status 0 (${signal ?? code}):\n${out}`);
      resolve(ms);
    });
  });
}

function summarize(values) {
  const s = [...values].sort((a, b) => a - b);
  const at = (q) => {
    const pos = (s.length - 1) * q;
    const lo = Math.floor(pos);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
  };
  return { n: s.length, median: at(0.5), q1: at(0.25), q3: at(0.75), min: s[0], max: s.at(-1) };
}

function table(header, rows) {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  return all.map((r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (m) => { if (!opts.json || process.stderr.isTTY) process.stderr.write(`bench: ${m}\n`); };
  const { bundle, runcVersion } = prepare(log);
  const { Container } = await import(path.join(ROOT, 'dist/bundle/index.js'));
  let serial = 0;
  const id = (prefix) => `${prefix}-${process.pid}-${serial++}`;

  const runc = () => ['runc', 'run', '--bundle', bundle, id('bench-runc')];
  const cli = () => [process.execPath, TSVMM, 'container', 'run', '--bundle', bundle, '--name', id('bench-cli')];
  const node = () => [process.execPath, '-e', '0'];
  const contenders = [
    { id: 'runc', name: 'runc run', command: `runc run --bundle ${bundle} ID`, run: () => timeProcess('runc', runc()), rss: () => peakRss('runc', runc()) },
    {
      id: 'cli', name: 'tsvmm container run (CLI)', command: `node bin/tsvmm.js container run --bundle ${bundle} --name ID`,
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
    { id: 'node', name: 'node -e 0 (reference)', command: 'node -e 0', run: () => timeProcess('node', node()), rss: () => peakRss('node', node()) },
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
  const rssMiB = Object.fromEntries(contenders.map((c) => {
    const kib = rss[c.id].filter((v) => v !== null);
    return [c.id, kib.length ? summarize(kib.map((v) => v / 1024)) : null];
  }));
  // A ratio of medians, and the spread of the per-round ratios (both from the same rounds).
  const ratio = (a, b) => {
    const perRound = summarize(samples[a].map((v, i) => v / samples[b][i]));
    return { ofMedians: stats[a].median / stats[b].median, perRoundMedian: perRound.median, perRoundQ1: perRound.q1, perRoundQ3: perRound.q3 };
  };
  const results = {
    config: { runs: opts.runs, warmup: opts.warmup, runc: runcVersion, node: process.version, workload: '/bin/true in the busybox bundle' },
    commands: Object.fromEntries(contenders.map((c) => [c.id, c.command.replaceAll(bundle, 'BUNDLE')])),
    ms: stats,
    peakRssMiB: rssMiB,
    ratios: { cliOverRunc: ratio('cli', 'runc'), libraryOverRunc: ratio('library', 'runc'), nodeOverRunc: ratio('node', 'runc'), cliOverNode: ratio('cli', 'node') },
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
  const f = (n) => n.toFixed(1);
  const r = (x) => `${x.ofMedians.toFixed(2)}x (per round: median ${x.perRoundMedian.toFixed(2)}, IQR ${x.perRoundQ1.toFixed(2)}-${x.perRoundQ3.toFixed(2)})`;
  console.log([
    `Container start to exit: ${results.config.workload}; ${opts.runs} rounds (+${opts.warmup} warm-up), contenders interleaved`,
    `${runcVersion}, Node ${process.version}`,
    '',
    table(['contender', 'median ms', 'IQR ms', 'min-max ms', 'vs runc', 'vs node -e 0', 'peak RSS MiB'], contenders.map((c) => {
      const s = stats[c.id];
      return [c.name, f(s.median), `${f(s.q1)}-${f(s.q3)}`, `${f(s.min)}-${f(s.max)}`, c.id === 'runc' ? '1.00x' : `${(s.median / stats.runc.median).toFixed(2)}x`,
        c.id === 'node' ? '1.00x' : `${(s.median / stats.node.median).toFixed(2)}x`, rssMiB[c.id] ? f(rssMiB[c.id].median) : '- (in this process)'];
    })),
    '',
    `tsvmm CLI / runc:      ${r(results.ratios.cliOverRunc)}`,
    `tsvmm library / runc:  ${r(results.ratios.libraryOverRunc)}`,
    `node -e 0 / runc:      ${r(results.ratios.nodeOverRunc)}`,
    `tsvmm CLI / node -e 0: ${r(results.ratios.cliOverNode)}`,
    '',
    'Targets (ratios of medians):',
    ...results.targets.map((t) => `  ${t.met ? 'MET ' : 'MISS'}  ${t.description}: ${t.ratio.toFixed(2)}x`),
    '',
    'Commands (BUNDLE: a copy of .cache/busybox-bundle/config.json running /bin/true on its rootfs):',
    ...contenders.map((c) => `  ${c.name}: ${results.commands[c.id]}`),
  ].join('\n'));
}

await main();

#!/usr/bin/env node
// Where start-up goes: each command run under `node --cpu-prof` (main thread), its samples summed
// by what they were in, the median over the runs (of each category, and of the totals: a loaded
// machine's outliers would carry a mean); `node -e 0` alongside as the reference. Commands
// alternate run by run, as in the other benchmarks, so that a loaded machine's drift hits them
// alike. The profiler's own sampling inflates the times: read the shares, not the milliseconds.
//
//   node bench/startup-profile.mjs [--runs N] [--interval µs] [--root DIR] [--json]
//
// --root: profile the built tsvmm checkout in DIR instead of this one (a before/after comparison).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, fail, table } from './lib.mjs';

const commands = (root) => {
  const TEST_ELF = path.join(root, 'guests/build/test.elf');
  const TSVMM = path.join(root, 'bin/tsvmm.js');
  return [
    { name: 'node -e 0 (reference)', args: ['-e', '0'] },
    { name: 'tsvmm --version', args: [TSVMM, '--version'] },
    { name: 'tsvmm ps', args: [TSVMM, 'ps'] },
    { name: 'tsvmm run (tiny guest)', args: [TSVMM, 'run', '-q', '--kernel', TEST_ELF, '--cmdline', 'mode=exits count=0'] },
  ];
};

/** What a sample was in, by the frame it was taken in. */
const CATEGORIES = [
  ['idle (waiting: the kernel, another thread)', (f) => f.functionName === '(idle)'],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['tsvmm\'s bundles (our code, the addon\'s system calls)', (f) => f.url.includes('/dist/bundle/')],
  ['Node\'s JavaScript (bootstrap, module loaders, streams, net)', (f) => f.url.startsWith('node:')],
  ['V8 and native code (parsing, compiling, C++)', () => true],
];

function parseArgs(argv) {
  const opts = { runs: 8, interval: 200, json: false, root: ROOT };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split('=', 2);
    const value = () => {
      const n = Number(inline ?? argv[++i]);
      if (!Number.isInteger(n) || n < 1) fail(`${name} wants a positive integer`);
      return n;
    };
    if (name === '--runs') opts.runs = value();
    else if (name === '--interval') opts.interval = value();
    else if (name === '--root') opts.root = path.resolve(inline ?? argv[++i] ?? fail('--root wants a directory'));
    else if (name === '--json') opts.json = true;
    else fail(`unknown argument ${JSON.stringify(argv[i])}\nusage: node bench/startup-profile.mjs [--runs N] [--interval µs] [--root DIR] [--json]`);
  }
  return opts;
}

/** Milliseconds of samples per category in one profile. */
function summarize(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const totals = Object.fromEntries(CATEGORIES.map(([name]) => [name, 0]));
  profile.samples.forEach((id, i) => {
    const frame = frames.get(id);
    const [name] = CATEGORIES.find(([, test]) => test(frame));
    totals[name] += (profile.timeDeltas[i] ?? 0) / 1000;
  });
  return totals;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const COMMANDS = commands(opts.root);
  const runtimeDir = mkdtempSync(path.join(tmpdir(), 'tsvmm-profile-rt-'));
  const samples = COMMANDS.map(() => []);
  try {
    for (let run = 0; run < opts.runs; run++) {
      COMMANDS.forEach((command, c) => {
        const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-profile-'));
        try {
          const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', String(opts.interval), ...command.args], {
            encoding: 'utf8', env: { ...process.env, TSVMM_RUNTIME_DIR: runtimeDir }, timeout: 60_000,
          });
          if (r.status !== 0) fail(`${command.name} exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
          const [file] = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
          if (!file) fail(`${command.name} left no profile`);
          samples[c].push(summarize(path.join(dir, file)));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  } finally {
    rmSync(runtimeDir, { recursive: true, force: true });
  }
  const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  const total = (m) => Object.values(m).reduce((a, b) => a + b, 0);
  const medians = samples.map((runs) => ({
    ...Object.fromEntries(CATEGORIES.map(([name]) => [name, median(runs.map((r) => r[name]))])),
    total: median(runs.map(total)),
  }));
  if (opts.json) {
    console.log(JSON.stringify({ root: opts.root, runs: opts.runs, intervalUs: opts.interval, commands: COMMANDS.map((c, i) => ({ name: c.name, medianMs: medians[i] })) }, null, 2));
    return;
  }
  console.log(`${opts.root}: main thread's samples, median ms of ${opts.runs} runs each (--cpu-prof, every ${opts.interval} µs), commands alternated:`);
  console.log(table(['', ...COMMANDS.map((c) => c.name)], [
    ...CATEGORIES.map(([name]) => [name, ...medians.map((m) => m[name].toFixed(1))]),
    ['total (the median run\'s: the medians above need not add up to it)', ...medians.map((m) => m.total.toFixed(1))],
  ]));
}

main();

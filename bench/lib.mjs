// What the benchmarks share: checking that tsvmm is built, building a C helper, running a contender
// while timestamping the lines it prints, and the statistics and tables of the reports.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TIME = '/usr/bin/time';

/**
 * The tsvmm command as a user runs it: the program itself, so that its first lines apply (they
 * start Node without NODE_EXTRA_CA_CERTS, see bin/tsvmm.js), not `node bin/tsvmm.js`.
 */
export const TSVMM_BIN = path.join(ROOT, 'bin/tsvmm.js');

/** The certificate file every Node start reads first, when the environment names one. */
export const EXTRA_CA_CERTS = process.env.NODE_EXTRA_CA_CERTS || null;

/**
 * Node's own start-up, the references of every start-up target: `node -e 0` as this environment
 * starts it, and, when NODE_EXTRA_CA_CERTS is set, also without it, which is what tsvmm and
 * tsvmm-runc start from. Both are reported, so that the file tsvmm skips is not taken for tsvmm
 * being faster than Node. `argv` is the command line without its `-e 0`.
 */
export function nodeReferences() {
  const refs = [{ id: 'node', name: 'node -e 0 (reference)', argv: [process.execPath] }];
  if (EXTRA_CA_CERTS) {
    refs.push({ id: 'nodeBare', name: 'node -e 0 without NODE_EXTRA_CA_CERTS (reference)', argv: ['/usr/bin/env', '-u', 'NODE_EXTRA_CA_CERTS', process.execPath] });
  }
  return refs.map((r) => ({ ...r, command: () => [...r.argv, '-e', '0'] }));
}

export function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Preparation

/** Fails unless the guest, dist/ and the addon are there; warns when src/ is newer than dist/. */
export function checkTsvmmBuilt(guest, log) {
  if (!existsSync(guest)) fail(`${path.relative(ROOT, guest)} is missing: run \`make -C guests\` first`);
  if (!existsSync(path.join(ROOT, 'dist/bundle/cli.cjs'))) fail('dist/ is missing: run `npm run build` first');
  if (!existsSync(path.join(ROOT, 'build/Release/tsvmm.node'))) fail('the native addon is missing: run `npm install` first');
  const stale = newestMtime(path.join(ROOT, 'src')) > statSync(path.join(ROOT, 'dist/bundle/cli.cjs')).mtimeMs;
  if (stale) log('warning: src/ has files newer than dist/; run `npm run build` to measure the current code');
  // Every Node start reads and parses this file before any script runs: on this project's machines
  // (set system-wide) it was 36 ms of a 62 ms `node -e 0`, so it is much of every start-up figure.
  if (EXTRA_CA_CERTS) {
    log(`note: NODE_EXTRA_CA_CERTS is set (${EXTRA_CA_CERTS}): every Node start here first loads it; tsvmm (run as a program) and tsvmm-runc's front end start Node without it, so Node's start is measured both ways`);
  }
}

/** Builds a one-file C program with `gcc -O2 -Wall`. */
export function buildC(source, binary, log) {
  mkdirSync(path.dirname(binary), { recursive: true });
  log(`building ${path.relative(ROOT, binary)} (gcc -O2)`);
  const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', binary, source], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) fail(`gcc failed: ${cc.error?.message ?? cc.stderr.trim()}`);
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Removes the cgroup `parent` at the top of every hierarchy (each cgroup v1 controller's, or the v2
 * one), with whatever empty cgroups are left below it. An engine puts its containers under a
 * parent (containerd: /NAMESPACE) that no runtime removes, runc included; a benchmark must not
 * leave the host's hierarchies fuller.
 */
export function removeEmptyCgroups(parent) {
  const removeTree = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeTree(path.join(dir, entry.name));
    try { rmdirSync(dir); } catch { /* still in use */ }
  };
  for (const hierarchy of ['', ...readdirSync('/sys/fs/cgroup')]) {
    const dir = path.join('/sys/fs/cgroup', hierarchy, parent);
    if (existsSync(dir)) removeTree(dir);
  }
}

export const shellQuote = (args) => args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');

// ---------------------------------------------------------------------------------------------
// One run: spawn, timestamp the lines on stdout, wait for the exit.

let running; // the child being measured, killed with the benchmark on Ctrl-C
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (running) try { process.kill(-running.pid, 'SIGKILL'); } catch { /* already gone */ }
    process.exit(130);
  });
}

/**
 * Runs argv with stdin from /dev/null. Resolves with the spawn-to-exit time, the time each
 * awaited line appeared (ms since spawn, taken when the chunk holding its '\n' arrived), the output
 * and the exit status. With `rssFile`, the command runs under /usr/bin/time, which writes the
 * peak RSS (KiB) there. `env` replaces the environment.
 */
export function runOnce(argv, { lines, timeoutMs, rssFile, env }) {
  const full = rssFile ? [TIME, '-f', '%M', '-o', rssFile, ...argv] : argv;
  return new Promise((resolve) => {
    const seen = new Map();
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const start = performance.now();
    // In its own process group, so that a timeout also kills a VMM that /usr/bin/time started.
    const child = spawn(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, detached: true, env: env ?? process.env });
    running = child;
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (chunk) => {
      const now = performance.now();
      stdout += chunk;
      for (const line of lines) {
        if (!seen.has(line) && stdout.includes(`${line}\n`)) seen.set(line, now - start);
      }
    });
    child.stderr.setEncoding('latin1');
    child.stderr.on('data', (chunk) => { if (stderr.length < 4096) stderr += chunk; });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutMs);
    let exitMs;
    child.on('exit', () => { exitMs = performance.now() - start; });
    child.on('error', (error) => { stderr += error.message; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running = undefined;
      resolve({ exitMs: exitMs ?? performance.now() - start, seen, stdout, stderr, code, signal, timedOut });
    });
  });
}

export function readRss(file) {
  try {
    const kib = Number(readFileSync(file, 'utf8').trim().split('\n').pop());
    return Number.isFinite(kib) && kib > 0 ? kib : null;
  } catch {
    return null;
  }
}

/** Ends the benchmark with one line naming the contender and what it printed. */
export function contenderFailed(contender, what, result) {
  const clip = (s) => JSON.stringify(s.length > 300 ? `${s.slice(0, 300)}…` : s);
  const how = result.timedOut ? 'timed out' : result.signal ? `died of ${result.signal}` : `exited ${result.code}`;
  fail(`${contender.name} failed ${what}: ${how}; stdout ${clip(result.stdout)}, stderr ${clip(result.stderr.trim())}`);
}

// ---------------------------------------------------------------------------------------------
// Statistics

function quantile(sorted, q) {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

export function summarize(samples) {
  const values = samples.filter((v) => v !== null && Number.isFinite(v));
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), min: s[0], max: s.at(-1), q1: quantile(s, 0.25), q3: quantile(s, 0.75), samples: values };
}

/** a/b of the medians, and the range of the per-round ratios (both measured in the same round). */
export function ratio(a, b) {
  if (!a || !b) return null;
  const paired = a.samples.map((x, i) => x / b.samples[i]).filter(Number.isFinite).sort((x, y) => x - y);
  return { ofMedians: a.median / b.median, pairedMin: paired[0], pairedMax: paired.at(-1) };
}

// ---------------------------------------------------------------------------------------------
// Report

export function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('   ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('   '), ...rows.map(line)].join('\n');
}

export const fmt = (v, digits) => (v === null || v === undefined ? '-' : v.toFixed(digits));
export const fmtRatio = (r) => (r ? `${r.ofMedians.toFixed(3)} (${r.pairedMin.toFixed(3)}-${r.pairedMax.toFixed(3)})` : '-');

/**
 * Walks a command line of `--name value`, `--name=value` and plain flags. `handle(name, read)`
 * applies one option and returns false for a name it does not know, which ends the program with
 * `usage`; `--help` prints `usage`. `read.raw()` takes the option's value, `read.integer(v, min)`
 * checks one.
 */
export function parseOptions(argv, usage, handle) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.split('=', 2);
    if (name === '--help' || name === '-h') {
      console.log(usage);
      process.exit(0);
    }
    const read = {
      raw: () => inline ?? argv[++i],
      integer: (v, min) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) fail(`${name} wants an integer of at least ${min}, got ${JSON.stringify(v)}`);
        return n;
      },
    };
    if (!handle(name, read)) fail(`unknown argument ${JSON.stringify(arg)}\n${usage}`);
  }
}

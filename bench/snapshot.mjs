#!/usr/bin/env node
// Snapshot and restore of a VM whose guest has touched N bytes of its RAM (guests/build/test.elf
// mode=touch), against writing and reading the same number of bytes with plain file I/O in the
// same round; and the time from `tsvmm restore FILE` to the guest running again, against a fresh
// boot. See bench/README.md.
//
//   node bench/snapshot.mjs [--sizes MiB,MiB] [--runs R] [--warmup W] [--cold] [--dir DIR] [--json]
//
// Each round measures every pair once, in an order that rotates from round to round, so that the
// drift of a shared, noisy machine falls on both sides alike; ratios are taken within one invocation.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, checkTsvmmBuilt, fail, fmt, fmtRatio, parseOptions, ratio, shellQuote, summarize, table } from './lib.mjs';

const GUEST = path.join(ROOT, 'guests/build/test.elf');
const TSVMM = path.join(ROOT, 'bin/tsvmm.js');
const MiB = 1048576;
/** Guest RAM beyond the touched bytes: the kernel below 16 MiB, where the touched area starts. */
const HEADROOM = 64 * MiB;
/** The counter's pause between lines (CPL-0 iterations): a line every ~1 ms, so "running again" is seen at once. */
const COUNTER_PAUSE = 1000;
/** How long the guest runs between the full snapshot and the diff (it writes a page per counter line). */
const DIFF_AFTER_MS = 100;
/** Plain file I/O goes in chunks of the size the snapshot writer uses. */
const CHUNK = 4 * MiB;

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const opts = { sizes: [256, 1024], runs: 5, warmup: 1, cold: false, dir: tmpdir(), json: false };
  const usage = 'usage: node bench/snapshot.mjs [--sizes MiB,MiB] [--runs R] [--warmup W] [--cold] [--dir DIR] [--json]';
  parseOptions(argv, usage, (name, { raw, integer }) => {
    if (name === '--sizes') opts.sizes = String(raw()).split(',').map((v) => integer(v, 1));
    else if (name === '--runs') opts.runs = integer(raw(), 1);
    else if (name === '--warmup') opts.warmup = integer(raw(), 0);
    else if (name === '--cold') opts.cold = true;
    else if (name === '--dir') opts.dir = path.resolve(String(raw()));
    else if (name === '--json') opts.json = true;
    else return false;
    return true;
  });
  return opts;
}

// ---------------------------------------------------------------------------------------------
// What is measured. Each returns milliseconds.

const since = (start) => performance.now() - start;

/** Plain write: the same bytes (non-zero, like touched RAM) in 4 MiB writes, then fsync, as the snapshot writer does. */
function plainWrite(file, bytes) {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const start = performance.now();
  const fd = openSync(file, 'w', 0o600);
  for (let done = 0; done < bytes; done += CHUNK) writeSync(fd, chunk, 0, Math.min(CHUNK, bytes - done));
  fsyncSync(fd);
  closeSync(fd);
  return since(start);
}

/** Plain read of the whole file in 4 MiB reads. */
function plainRead(file, bytes) {
  const chunk = Buffer.alloc(CHUNK);
  const start = performance.now();
  const fd = openSync(file, 'r');
  let done = 0;
  for (let n; (n = readSync(fd, chunk, 0, CHUNK, null)) > 0;) done += n;
  closeSync(fd);
  if (done !== bytes) fail(`read ${done} bytes of ${file}, not ${bytes}`);
  return since(start);
}

/** Restore in this process until the guest prints its next counter line: memory is mapped, pages load when touched. */
async function restoreLazy(Vm, file) {
  const start = performance.now();
  const vm = await Vm.restore(file);
  await vm.waitForOutput('counter: ', 30_000);
  const ms = since(start);
  await vm.stop();
  return ms;
}

/** The same mapping with every page brought in (one byte read per page, on the host): what a guest that reads all its RAM costs at most. */
async function restoreAllPages(openVmSnapshot, file) {
  const start = performance.now();
  const opened = await openVmSnapshot(file);
  let sum = 0;
  for (const r of opened.memory.regions) for (let at = 0; at < r.size; at += 4096) sum += r.bytes[at];
  const ms = since(start);
  opened.memory.close();
  if (!(sum > 0)) fail(`${file}: the restored memory reads as zeros`);
  return ms;
}

/** Spawns argv and resolves with the time until stdout has a line starting with `prefix`; then kills it. */
function spawnUntilLine(argv, prefix, timeoutMs = 60_000) {
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, detached: true });
    let out = '';
    let err = '';
    let ms;
    const kill = () => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } };
    const timer = setTimeout(kill, timeoutMs);
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (ms === undefined && new RegExp(`(^|\\n)${prefix}[^\\n]*\\n`).test(out)) {
        ms = since(start);
        kill();
      }
    });
    child.stderr.setEncoding('latin1');
    child.stderr.on('data', (chunk) => { if (err.length < 2000) err += chunk; });
    child.on('close', () => {
      clearTimeout(timer);
      if (ms === undefined) fail(`${shellQuote(argv.map((a) => a.replace(`${ROOT}/`, '')))} printed no "${prefix}" line: stdout ${JSON.stringify(out.slice(0, 300))}, stderr ${JSON.stringify(err.trim())}`);
      resolve(ms);
    });
  });
}

/** Drops a file's pages from the page cache (GNU dd's nocache flag: posix_fadvise DONTNEED), for --cold. */
function dropCache(file) {
  const r = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
  if (r.status !== 0) fail(`cannot drop ${file} from the page cache: ${r.stderr?.toString().trim() || r.error?.message}`);
}

// ---------------------------------------------------------------------------------------------
// Report

const MEASURES = [
  ['snapshot', 'vm.snapshot(FILE) of the running VM (pause, write, fsync, rename, resume); FILE removed and `sync` run before, untimed'],
  ['write', 'plain write of the same bytes (4 MiB writes, fsync); the file removed and `sync` run before, untimed'],
  ['diff', `vm.snapshot(FILE2, { diff: true }) ${DIFF_AFTER_MS} ms after it: the pages written since`],
  ['restore', 'Vm.restore(FILE) in-process until the guest prints its next line (pages load on touch)'],
  ['restoreAll', 'the snapshot mapped as a restore maps it, every page then read once (host side)'],
  ['read', 'plain read of the same bytes (4 MiB reads)'],
  ['cliRestore', '`tsvmm restore -q FILE` spawned, until its first counter line'],
  ['cliBoot', '`tsvmm run -q` of the same guest and RAM size spawned, until "counter: 1"'],
];
const RATIOS = [
  ['snapshot', 'write', 'snapshot / plain write'],
  ['restoreAll', 'read', 'restore, all pages / plain read'],
  ['restore', 'read', 'restore to running / plain read'],
  ['cliRestore', 'cliBoot', 'tsvmm restore / fresh boot'],
];

function printReport(results) {
  const { config, sizes } = results;
  const out = [];
  out.push(`Snapshots: ${config.runs} rounds (+${config.warmup} warm-up), both sides of each pair interleaved; page cache ${config.cold ? 'dropped for the snapshot and plain files before each restore and read (--cold)' : 'warm (files just written)'}`);
  out.push(`guest: ${config.guest} mode=touch bytes=N pause=${COUNTER_PAUSE}, RAM N + ${HEADROOM / MiB} MiB; files in ${config.dir}`);
  out.push('');
  for (const s of sizes) {
    out.push(`${s.mib} MiB touched (snapshot file: ${(s.fileSize / MiB).toFixed(0)} MiB apparent, ${(s.memoryBytesWritten / MiB).toFixed(1)} MiB of non-zero pages written; diff: ${(s.diffBytes / 1024).toFixed(0)} KiB of pages)`);
    out.push(table(['measure', 'median ms', 'min-max ms', 'IQR ms', 'MB/s (median)'], MEASURES.map(([id]) => {
      const m = s.measures[id];
      const mbps = ['snapshot', 'write', 'restoreAll', 'read'].includes(id) && m ? fmt((s.mib * MiB) / 1e6 / (m.median / 1000), 0) : '';
      return [id, fmt(m?.median, 1), `${fmt(m?.min, 1)}-${fmt(m?.max, 1)}`, `${fmt(m?.q1, 1)}-${fmt(m?.q3, 1)}`, mbps];
    })));
    out.push('');
    out.push('Ratios of medians (range of the per-round ratios in brackets):');
    out.push(table(['', 'ratio'], RATIOS.map(([a, b, label]) => [label, fmtRatio(s.ratios[`${a}/${b}`])])));
    out.push('');
  }
  out.push('Measures:');
  for (const [id, what] of MEASURES) out.push(`  ${id}: ${what}`);
  out.push('Commands:');
  for (const [name, line] of Object.entries(config.commands)) out.push(`  ${name}: ${line}`);
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (m) => process.stderr.write(`bench: ${m}\n`);
  checkTsvmmBuilt(GUEST, log);
  const { Vm } = await import(path.join(ROOT, 'dist/bundle/index.js'));
  const { openVmSnapshot } = await import(path.join(ROOT, 'dist/vmm/snapshot.js'));

  const tmp = mkdtempSync(path.join(opts.dir, 'tsvmm-bench-snap-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const snapFile = path.join(tmp, 'vm.snap');
  const diffFile = path.join(tmp, 'vm-diff.snap');
  const plainFile = path.join(tmp, 'plain.bin');
  const bootArgs = (mib) => [process.execPath, TSVMM, 'run', '-q', '--kernel', GUEST, '--mem', `${mib + HEADROOM / MiB}M`, '--cmdline', `mode=counter pause=${COUNTER_PAUSE}`];
  const restoreArgs = [process.execPath, TSVMM, 'restore', '-q', snapFile];
  const sizes = [];

  for (const mib of opts.sizes) {
    const bytes = mib * MiB;
    log(`${mib} MiB: booting the guest and touching its memory`);
    const touchStart = performance.now();
    const vm = Vm.boot({ kernel: GUEST, cmdline: `mode=touch bytes=${bytes} pause=${COUNTER_PAUSE}`, memory: bytes + HEADROOM });
    await vm.waitForOutput(`touch: done ${bytes}\n`, 600_000).catch((error) => fail(`the guest did not touch ${mib} MiB: ${error.message}`));
    const touchMs = since(touchStart);
    await vm.pause();
    const samples = Object.fromEntries(MEASURES.map(([id]) => [id, []]));
    let written;
    let diffBytes = 0;
    const pairs = [
      // The VM runs only inside the snapshot's own pause and resume; between measures it is paused, so it steals no CPU.
      [['snapshot', async () => {
        vm.resume();
        const start = performance.now();
        written = await vm.snapshot(snapFile);
        const ms = since(start);
        await new Promise((resolve) => setTimeout(resolve, DIFF_AFTER_MS));
        const diffStart = performance.now();
        const diff = await vm.snapshot(diffFile, { diff: true });
        samples.diff.push(since(diffStart));
        diffBytes = diff.memoryBytes;
        await vm.pause();
        return ms;
      }], ['write', () => plainWrite(plainFile, bytes)]],
      [['restore', () => restoreLazy(Vm, snapFile)], ['restoreAll', () => restoreAllPages(openVmSnapshot, snapFile)], ['read', () => plainRead(plainFile, bytes)]],
      [['cliRestore', () => spawnUntilLine(restoreArgs, 'counter: ')], ['cliBoot', () => spawnUntilLine(bootArgs(mib), 'counter: 1')]],
    ];
    const rounds = opts.warmup + opts.runs;
    for (let round = 0; round < rounds; round++) {
      const warm = round < opts.warmup;
      log(`${mib} MiB, ${warm ? 'warm-up' : `round ${round - opts.warmup + 1}/${opts.runs}`}`);
      for (const pair of pairs) {
        for (const [id, measure] of pair.map((_, i) => pair[(i + round) % pair.length])) {
          if (id === 'snapshot' || id === 'write') {
            // Untimed: neither side pays for freeing the file it replaces, nor for write-back left over from the other.
            for (const f of id === 'snapshot' ? [snapFile, diffFile] : [plainFile]) rmSync(f, { force: true });
            spawnSync('sync');
          } else if (opts.cold && id !== 'cliBoot') {
            for (const f of [snapFile, plainFile]) dropCache(f);
          }
          const ms = await measure();
          if (!warm) samples[id].push(ms);
        }
      }
      if (warm) samples.diff.length = 0;
    }
    await vm.stop();
    const measures = Object.fromEntries(Object.entries(samples).map(([id, v]) => [id, summarize(v)]));
    sizes.push({
      mib, touchMs, fileSize: written.fileSize, memoryBytesWritten: written.memoryBytesWritten, diffBytes, measures,
      ratios: Object.fromEntries(RATIOS.map(([a, b]) => [`${a}/${b}`, ratio(measures[a], measures[b])])),
    });
    rmSync(snapFile, { force: true });
    rmSync(diffFile, { force: true });
    rmSync(plainFile, { force: true });
  }

  const rel = (args) => shellQuote(args).replaceAll(`${ROOT}/`, '').replaceAll(tmp, 'DIR').replace(process.execPath, 'node');
  const results = {
    config: {
      runs: opts.runs, warmup: opts.warmup, cold: opts.cold, dir: opts.dir, node: process.version,
      guest: path.relative(ROOT, GUEST), headroomMiB: HEADROOM / MiB, counterPause: COUNTER_PAUSE,
      unit: 'ms; MB/s = 10^6 bytes per second',
      commands: {
        guest: `Vm.boot({ kernel: 'guests/build/test.elf', cmdline: 'mode=touch bytes=N pause=${COUNTER_PAUSE}', memory: N + ${HEADROOM / MiB} MiB })`,
        cliRestore: rel(restoreArgs),
        cliBoot: rel(bootArgs(0)).replace(`--mem ${HEADROOM / MiB}M`, '--mem N+64M'),
      },
    },
    sizes,
  };
  if (opts.json) console.log(JSON.stringify(results, null, 2));
  else printReport(results);
}

await main();

#!/usr/bin/env node
// virtio-blk sequential throughput: a guest streaming reads and writes through tsvmm's virtio-blk
// (guests/build/virtio.elf, mode=blk op=stream) against the host reading and writing the same
// image file directly with pread/pwrite of the same request size (bench/c/blk-stream.c). See
// bench/README.md.
//
//   node bench/virtio-blk.mjs [--runs R] [--warmup W] [--req BYTES,BYTES] [--depth N] [--mib M] [--json]
//
// Each round runs every (request size, direction, contender) once, the contenders in an order that
// rotates from round to round; ratios are taken within one invocation.

import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ROOT, buildC, checkTsvmmBuilt, contenderFailed, fail, fmt, fmtRatio, parseOptions, ratio, runOnce, shellQuote,
  summarize, table,
} from './lib.mjs';

const GUEST = path.join(ROOT, 'guests/build/virtio.elf');
const HELPER_SOURCE = path.join(ROOT, 'bench/c/blk-stream.c');
const HELPER = path.join(ROOT, 'bench/build/blk-stream');
const GUEST_MEMORY = '128M';
const DIRECTIONS = ['write', 'read'];

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const opts = { runs: 5, warmup: 1, req: [4096, 131072], depth: 128, mib: 256, json: false };
  const usage = 'usage: node bench/virtio-blk.mjs [--runs R] [--warmup W] [--req BYTES,BYTES] [--depth N] [--mib M] [--json]';
  parseOptions(argv, usage, (name, { raw, integer }) => {
    if (name === '--runs') opts.runs = integer(raw(), 1);
    else if (name === '--warmup') opts.warmup = integer(raw(), 0);
    else if (name === '--depth') opts.depth = integer(raw(), 1);
    else if (name === '--mib') opts.mib = integer(raw(), 1);
    else if (name === '--req') opts.req = String(raw()).split(',').map((v) => integer(v, 512));
    else if (name === '--json') opts.json = true;
    else return false;
    return true;
  });
  for (const req of opts.req) {
    if (req % 512 !== 0 || (opts.mib * 1048576) % req !== 0) fail(`--req ${req}: a request size must be a multiple of 512 that divides the image`);
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// The contenders: the same sequential pass over the same file, in a VM and on the host.

function contenders(image, depth) {
  return [
    {
      id: 'tsvmm',
      name: 'tsvmm',
      command: (dir, size, req) => [
        process.execPath, path.join(ROOT, 'bin/tsvmm.js'), 'run', '-q', '--mem', GUEST_MEMORY, '--kernel', GUEST, '--disk', image,
        '--cmdline', `mode=blk op=stream dir=${dir} size=${size} req=${req} depth=${depth}`,
      ],
      lines: (size) => ['blk: stream start', `blk: stream done ${size}`],
    },
    {
      id: 'host',
      name: 'host',
      command: (dir, size, req) => [HELPER, image, dir, String(size), String(req)],
      lines: (size) => ['host: stream start', `host: stream done ${size}`],
    },
  ];
}

/** The image: written out in full (not sparse), so that both contenders find every block there. */
function createImage(file, bytes) {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  fdatasyncSync(fd);
  closeSync(fd);
}

/** Untimed, before every run: the file stays cached, and no write-back of the last run is left. */
function settleImage(file) {
  const fd = openSync(file, 'r+');
  fdatasyncSync(fd);
  closeSync(fd);
}

/** One timed pass; MB/s (10^6 bytes a second) between the start and done lines. */
async function streamRun(contender, dir, size, req) {
  const [start, done] = contender.lines(size);
  const result = await runOnce(contender.command(dir, size, req), { lines: [start, done], timeoutMs: 300_000 });
  if (!result.seen.has(start) || !result.seen.has(done)) contenderFailed(contender, `to print "${start}" and "${done}" (${dir}, req=${req})`, result);
  if (result.code !== 0) contenderFailed(contender, `to exit with status 0 (${dir}, req=${req})`, result);
  const ms = result.seen.get(done) - result.seen.get(start);
  if (!(ms > 0)) fail(`${contender.name} printed "${start}" and "${done}" together (${dir}, req=${req}): too fast to time, use a larger --mib`);
  return size / (ms / 1000) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Report

const fmtReq = (bytes) => (bytes % 1048576 === 0 ? `${bytes / 1048576} MiB` : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`);

function printReport(results) {
  const { config, rows } = results;
  const out = [];
  out.push(`virtio-blk sequential throughput: ${config.mib} MiB image, ${config.runs} rounds (+${config.warmup} warm-up), contenders interleaved`);
  out.push(`tsvmm: ${config.guest} mode=blk op=stream, ${config.depth} requests in flight (indirect descriptors, EVENT_IDX, interrupts), --mem ${GUEST_MEMORY}`);
  out.push('host: bench/c/blk-stream.c, pread/pwrite of the same file, one request at a time');
  out.push('Both go through the page cache with the whole file cached (no O_DIRECT, no fsync in the timed');
  out.push('interval; the image is fdatasync\'ed, untimed, before every run). MB/s = 10^6 bytes/s between the');
  out.push('"stream start" and "stream done" lines.');
  out.push('');
  out.push(table(['request', 'op', 'contender', 'median MB/s', 'min-max MB/s', 'IQR MB/s'],
    rows.flatMap((r) => config.contenders.map((c) => {
      const s = r[c.id];
      return [fmtReq(r.req), r.dir, c.name, fmt(s.median, 0), `${fmt(s.min, 0)}-${fmt(s.max, 0)}`, `${fmt(s.q1, 0)}-${fmt(s.q3, 0)}`];
    }))));
  out.push('');
  out.push('tsvmm / host, ratio of medians (range of the per-round ratios in brackets):');
  out.push(table(['request', ...DIRECTIONS], config.req.map((req) => [
    fmtReq(req), ...DIRECTIONS.map((dir) => fmtRatio(rows.find((r) => r.req === req && r.dir === dir).tsvmmOverHost)),
  ])));
  out.push('');
  out.push('Commands (the image is a temporary file):');
  for (const c of config.contenders) out.push(`  ${c.name}: ${c.commandLine}`);
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (m) => process.stderr.write(`bench: ${m}\n`);
  checkTsvmmBuilt(GUEST, log);
  buildC(HELPER_SOURCE, HELPER, log);

  const size = opts.mib * 1048576;
  const tmp = mkdtempSync(path.join(tmpdir(), 'tsvmm-bench-blk-'));
  // Also when a failing contender ends the benchmark with process.exit().
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const image = path.join(tmp, 'disk.img');
  const list = contenders(image, opts.depth);
  const samples = new Map(); // `${req} ${dir}` → { tsvmm: [], host: [] }
  for (const req of opts.req) for (const dir of DIRECTIONS) samples.set(`${req} ${dir}`, Object.fromEntries(list.map((c) => [c.id, []])));

  log(`writing a ${opts.mib} MiB image in ${tmp}`);
  createImage(image, size);
  const rounds = opts.warmup + opts.runs;
  for (let round = 0; round < rounds; round++) {
    const warm = round < opts.warmup;
    const order = list.map((_, i) => list[(i + round) % list.length]);
    log(`${warm ? 'warm-up' : `round ${round - opts.warmup + 1}/${opts.runs}`}: ${order.map((c) => c.name).join(', ')}`);
    for (const req of opts.req) {
      for (const dir of DIRECTIONS) {
        for (const c of order) {
          settleImage(image);
          const mbps = await streamRun(c, dir, size, req);
          if (!warm) samples.get(`${req} ${dir}`)[c.id].push(mbps);
        }
      }
    }
  }
  rmSync(tmp, { recursive: true, force: true });

  const rows = [...samples].map(([key, byContender]) => {
    const [req, dir] = key.split(' ');
    const s = Object.fromEntries(Object.entries(byContender).map(([id, v]) => [id, summarize(v)]));
    return { req: Number(req), dir, ...s, tsvmmOverHost: ratio(s.tsvmm, s.host) };
  });
  const results = {
    config: {
      mib: opts.mib, runs: opts.runs, warmup: opts.warmup, req: opts.req, depth: opts.depth,
      guest: path.relative(ROOT, GUEST), guestMemory: GUEST_MEMORY, node: process.version,
      pageCache: 'warm: the whole file cached, no O_DIRECT, no fsync in the timed interval, fdatasync (untimed) before every run',
      unit: 'MB/s (10^6 bytes per second)',
      contenders: list.map((c) => ({
        id: c.id, name: c.name,
        commandLine: shellQuote(c.command('DIR', size, 'REQ')).replaceAll(image, 'IMAGE').replaceAll(`${ROOT}/`, ''),
      })),
    },
    rows,
  };
  if (opts.json) console.log(JSON.stringify(results, null, 2));
  else printReport(results);
}

await main();

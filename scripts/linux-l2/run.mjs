#!/usr/bin/env node
// Linux on tsvmm where the machine has no VMX/SVM: QEMU's software CPU (TCG) emulates an AMD CPU
// with SVM, an L1 Linux under it loads kvm_amd, and tsvmm inside L1 boots Linux (L2). This runs
// scenarios (scripts/linux-l2/l1-run.mjs) in one L1 boot, or, with --shell, leaves you at the
// L2 shell.
//
// Every stage is bounded. The whole L1 console goes to a log (named on stderr), the scenarios'
// results to results.json beside it. An L1 that goes silent (no console output and no heartbeat
// for --silence seconds) or whose kernel reports a CPU stuck is told apart from a failing
// scenario, and retried once with the scenarios it did not finish.
//
// usage: `node scripts/linux-l2/run.mjs --help` (USAGE below).
// --l1-script runs FILE in L1 as root (a Debian cloud kernel with KVM, cgroup v2 available,
// busybox, node, this tsvmm tree at /tsvmm); --l1-file adds host files (executables with their
// shared libraries). The script's output and exit status are the `script` scenario's result.
// exit status: 0 all scenarios passed; 1 a scenario failed; 2 the run could not be made
// (no QEMU, no kernel, an L1 without /dev/kvm, an L1 silent twice).

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clearInterval, setInterval } from 'node:timers';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ALL_SCENARIOS = ['boot1', 'devices', 'smp2', 'smp4', 'snapshot', 'qemu', 'containers'];

const USAGE = `usage: node scripts/linux-l2/run.mjs [--scenarios a,b|all] [--out DIR] [--shell] [--l2-append ARGS]
       [--silence S] [--timeout S] [--bench-rounds N]
       [--l1-script FILE --scenarios script [--l1-file SRC[:DEST]]... [--script-timeout S]]
scenarios: ${ALL_SCENARIOS.join(', ')} (all of these: all), bench, script
exit status: 0 all passed, 1 a scenario failed, 2 the run could not be made`;

let parsed;
try {
  parsed = parseArgs({ options: {
    help: { type: 'boolean', default: false },
    scenarios: { type: 'string', default: ALL_SCENARIOS.join(',') },
    out: { type: 'string' },
    shell: { type: 'boolean', default: false },
    'l2-append': { type: 'string', default: '' },
    silence: { type: 'string', default: '240' },
    timeout: { type: 'string', default: '2400' },
    'bench-rounds': { type: 'string', default: '3' },
    'l1-script': { type: 'string' },
    'l1-file': { type: 'string', multiple: true, default: [] },
    'script-timeout': { type: 'string', default: '600' },
  } });
} catch (error) {
  process.stderr.write(`linux-l2: ${error.message}\n${USAGE}\n`);
  process.exit(2);
}
const opts = parsed.values;
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const say = (line) => process.stderr.write(`linux-l2: ${line}\n`);
const fail = (code, line) => { say(line); process.exit(code); };
for (const name of ['silence', 'timeout', 'bench-rounds', 'script-timeout']) {
  if (!/^[1-9]\d*$/.test(opts[name])) fail(2, `--${name} ${opts[name]}: expected a positive whole number`);
}

const out = path.resolve(opts.out ?? path.join(root, '.cache/linux-l2', new Date().toISOString().replace(/[:.]/g, '-')));
mkdirSync(out, { recursive: true });

// --- build -----------------------------------------------------------------------------------------
const deps = spawnSync('sh', [path.join(root, 'scripts/ensure-test-deps.sh'), 'qemu-system-x86_64:qemu-system-x86', 'cpio:cpio', 'script:bsdutils'], { stdio: ['ignore', 'inherit', 'inherit'] });
if (deps.status !== 0) fail(2, 'cannot install what the nested Linux test needs (see above)');
say(`building the L1 initramfs in ${out}`);
const buildEnv = {
  ...process.env,
  L1_SCRIPT: opts['l1-script'] ? path.resolve(opts['l1-script']) : '',
  L1_FILES: opts['l1-file'].map((f) => { const [src, dest] = f.split(':'); return `${path.resolve(src)}:${dest ?? path.resolve(src)}`; }).join(' '),
};
if (opts['l1-script'] && !opts.scenarios.split(',').includes('script')) fail(2, '--l1-script is run by the scenario `script`: add it to --scenarios');
const build = spawnSync('sh', [path.join(root, 'scripts/linux-l2/build.sh'), out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000, env: buildEnv });
if (build.status !== 0) fail(2, `building the L1 initramfs failed${build.error ? ` (${build.error.message})` : ''}`);
const [initramfs, kernel] = build.stdout.trim().split('\n');

const qemuArgs = (append, eventsFile) => [
  '-accel', 'tcg,thread=multi',
  // QEMU's TCG does not intercept XSETBV for its SVM guests, so without -xsave L2 would run
  // with an XCR0 its KVM never set.
  '-cpu', 'max,-xsave', '-smp', '2', '-m', '3G',
  '-display', 'none', '-monitor', 'none', '-no-reboot', '-serial', 'stdio',
  ...(eventsFile ? ['-serial', `file:${eventsFile}`] : []),
  '-kernel', kernel, '-initrd', initramfs, '-append', `console=ttyS0 panic=-1 ${append}`,
];

// --- interactive: the L2 shell on this terminal ---------------------------------------------------
if (opts.shell) {
  say('booting L1 under QEMU TCG (about a minute), then Linux on tsvmm in it; Ctrl-A X in L2 quits tsvmm and L1 powers off');
  const l2append = opts['l2-append'].trim().split(/\s+/).filter(Boolean).join(',');
  const r = spawnSync('qemu-system-x86_64', qemuArgs(`quiet l1.scenarios=shell l1.l2append=${l2append}`), { stdio: 'inherit' });
  rmSync(initramfs, { force: true });
  process.exit(r.status ?? 2);
}

// --- scenarios --------------------------------------------------------------------------------------
/** One boot of L1 running `scenarios`; resolves with its events and how it ended. */
function bootL1(scenarios, attempt) {
  const log = path.join(out, `console-${attempt}.log`);
  const eventsFile = path.join(out, `events-${attempt}.jsonl`);
  writeFileSync(eventsFile, '');
  const logStream = createWriteStream(log);
  const t0 = performance.now();
  const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(2).padStart(8)}] `;
  say(`attempt ${attempt}: L1 under QEMU TCG runs ${scenarios.join(',')}; console in ${log}`);
  const qemu = spawn('qemu-system-x86_64', qemuArgs(`loglevel=4 l1.scenarios=${scenarios.join(',')} l1.bench_rounds=${Number(opts['bench-rounds'])} l1.script_timeout=${Number(opts['script-timeout'])}`, eventsFile), { stdio: ['ignore', 'pipe', 'pipe'] });
  let lastActivity = performance.now();
  let partial = '';
  const onConsole = (chunk) => {
    lastActivity = performance.now();
    const lines = (partial + chunk.toString('latin1')).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      logStream.write(`${stamp()}${line}\n`);
      // L1's own kernel says one of its CPUs has been stuck (in KVM, under TCG) for half a
      // minute: that L1 will not finish, whichever VMM ran in it.
      if (/watchdog: BUG: soft lockup - CPU#\d+ stuck/.test(line)) end('stuck');
    }
  };
  qemu.stdout.on('data', onConsole);
  qemu.stderr.on('data', onConsole);

  const events = [];
  let eventsRead = 0;
  let eventsPartial = '';
  const readEvents = () => {
    let size;
    try { size = statSync(eventsFile).size; } catch { return; }
    if (size <= eventsRead) return;
    const fd = openSync(eventsFile, 'r');
    const buffer = Buffer.alloc(size - eventsRead);
    readSync(fd, buffer, 0, buffer.length, eventsRead);
    closeSync(fd);
    eventsRead = size;
    lastActivity = performance.now();
    const lines = (eventsPartial + buffer.toString('utf8')).split('\n');
    eventsPartial = lines.pop();
    for (const line of lines.map((l) => l.replace(/\r$/, '')).filter(Boolean)) {
      let event;
      try { event = JSON.parse(line); } catch { logStream.write(`${stamp()}(an unreadable event line: ${line.slice(0, 200)})\n`); continue; }
      events.push(event);
      if (event.event === 'start') say(`  ${event.scenario}: started`);
      if (event.event === 'retry') say(`  ${event.scenario}: its L2 triple-faulted (${event.error ?? 'a check failed'}); running it once more`);
      if (event.event === 'result') say(`  ${event.scenario}: ${event.ok ? 'ok' : `FAILED${event.error ? ` (${event.error})` : ''}`} in ${event.seconds} s`);
      if (event.event === 'l1-error') say(`  L1: ${event.message}`);
    }
  };

  let ended;
  const end = (why) => { if (!ended) { ended = why; qemu.kill('SIGKILL'); } };
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      readEvents();
      const now = performance.now();
      if (now - lastActivity > Number(opts.silence) * 1000) end('silent');
      if (now - t0 > Number(opts.timeout) * 1000) end('timeout');
    }, 1000);
    qemu.on('close', (code) => {
      clearInterval(timer);
      readEvents();
      if (partial) logStream.write(`${stamp()}${partial}\n`);
      logStream.end();
      const seconds = Number(((performance.now() - t0) / 1000).toFixed(1));
      const done = events.some((e) => e.event === 'done' || e.event === 'l1-done');
      resolve({ log, events, seconds, ended: ended ?? (done ? 'done' : `qemu exited (${code}) before L1 finished`) });
    });
  });
}

/** `all` stands for the scenarios npm test runs (bench and script are asked for by name). */
const wanted = [...new Set(opts.scenarios.split(',').flatMap((s) => (s === 'all' ? ALL_SCENARIOS : s ? [s] : [])))];
const results = {};
const attempts = [];
let pending = wanted;
for (let attempt = 1; attempt <= 2 && pending.length; attempt++) {
  const run = await bootL1(pending, attempt);
  const l1Error = run.events.find((e) => e.event === 'l1-error');
  attempts.push({ attempt, log: run.log, seconds: run.seconds, ended: run.ended, l1Error: l1Error?.message });
  for (const e of run.events.filter((x) => x.event === 'result')) {
    results[e.scenario] = e;
    e.vmm?.forEach((v, i) => writeFileSync(path.join(out, `l2-${e.scenario}-${i}.log`), `${v.argv}\n\n${v.output}\n--- stderr ---\n${v.stderr}`));
  }
  pending = pending.filter((s) => !results[s]);
  if (l1Error) break;
  if (pending.length) {
    const started = run.events.filter((e) => e.event === 'start').map((e) => e.scenario);
    const why = run.ended === 'silent' ? `went silent (nothing for ${opts.silence} s)`
      : run.ended === 'stuck' ? 'reported a CPU stuck (soft lockup)' : run.ended;
    say(`L1 ${why} during ${started.at(-1) ?? 'its start'}; ${attempt === 1 ? 'retrying once with' : 'giving up on'} ${pending.join(',')}`);
  }
}

// The archive is rebuilt on every run; the logs and results stay.
rmSync(initramfs, { force: true });

const summary = {
  ok: wanted.every((s) => results[s]?.ok),
  scenarios: wanted,
  results,
  attempts,
  incomplete: pending,
};
writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(summary, null, 1)}\n`);
for (const s of wanted) {
  const r = results[s];
  const failed = r?.checks?.filter((c) => !c.ok).map((c) => c.name) ?? [];
  say(`${s.padEnd(9)} ${!r ? 'NO RESULT (L1 did not finish it)' : r.ok ? `ok (${r.seconds} s)` : `FAILED: ${r.error ?? failed.join(', ')}`}`);
}
say(`results in ${path.join(out, 'results.json')}`);
process.exit(summary.ok ? 0 : pending.length || attempts.some((a) => a.l1Error) ? 2 : 1);

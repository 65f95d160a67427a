#!/usr/bin/env node
// Linux boot time on tsvmm against QEMU/KVM, both inside the same L1 of the nested route
// (scripts/linux-l2: L1 under QEMU TCG with SVM): from starting the VMM to the L2 busybox prompt,
// with `quiet` on the kernel command line and without, in rounds whose order alternates. Ratios
// are tsvmm / QEMU within this one run. See bench/README.md.
//
//   node bench/linux-l2.mjs [--rounds R] [--out DIR] [--json]

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, fail, parseOptions, summarize, table } from './lib.mjs';

const opts = { rounds: 3, out: path.join(ROOT, '.cache/linux-l2/bench'), json: false };
parseOptions(process.argv.slice(2), 'usage: node bench/linux-l2.mjs [--rounds R] [--out DIR] [--json]', (name, { raw, integer }) => {
  if (name === '--rounds') opts.rounds = integer(raw(), 1);
  else if (name === '--out') opts.out = path.resolve(String(raw()));
  else if (name === '--json') opts.json = true;
  else return false;
  return true;
});

const run = spawnSync('node', [path.join(ROOT, 'scripts/linux-l2/run.mjs'), '--scenarios', 'bench', '--bench-rounds', String(opts.rounds), '--out', opts.out], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
let result;
try {
  result = JSON.parse(readFileSync(path.join(opts.out, 'results.json'), 'utf8')).results.bench;
} catch {
  fail(`scripts/linux-l2/run.mjs exited ${run.status} without results (see ${opts.out})`);
}
if (!result?.ok) fail(`the bench scenario failed: ${result?.error ?? 'see the checks'} (${opts.out})`);

const median = (xs) => summarize(xs).median;
const rows = [];
const report = {};
for (const quiet of [true, false]) {
  const of = (vmm) => result.timings.filter((t) => t.vmm === vmm && t.quiet === quiet).map((t) => t.seconds);
  const [tsvmm, qemu] = [of('tsvmm'), of('qemu')];
  const ratio = median(tsvmm) / median(qemu);
  const label = quiet ? 'quiet' : 'full banner';
  report[label] = { tsvmm, qemu, ratio };
  rows.push([label, tsvmm.map((s) => s.toFixed(1)).join(' '), median(tsvmm).toFixed(1), qemu.map((s) => s.toFixed(1)).join(' '), median(qemu).toFixed(1), ratio.toFixed(2)]);
}
// tsvmm's share before the guest runs: when each of its start-up phases ended (TSVMM_STARTUP_TRACE,
// src/meta/startup-trace.ts), median seconds after the spawn over all its boots.
const PHASES = [['node-bootstrap', 'Node started'], ['bundle', 'CLI bundle loaded'], ['create', 'command parsed'],
  ['kernel', 'kernel and initrd in guest memory'], ['vcpus', 'VM and vCPU made'], ['start', 'control socket up'], ['vcpu0-first-run', 'first KVM_RUN']];
const phaseRows = PHASES.map(([phase, what]) => {
  const at = result.timings.filter((t) => t.phases?.[phase] !== undefined).map((t) => t.phases[phase]);
  return [what, at.length ? median(at).toFixed(2) : '-'];
});
report.tsvmmStartup = Object.fromEntries(PHASES.map(([phase], i) => [phase, Number(phaseRows[i][1]) || undefined]));
if (opts.json) console.log(JSON.stringify(report, null, 1));
else {
  console.log(`VMM start to L2 shell prompt (s), inside one L1 under QEMU TCG with SVM; ${opts.rounds} rounds, order alternating`);
  console.log(table(['kernel command line', 'tsvmm runs', 'median', 'QEMU/KVM runs', 'median', 'tsvmm / QEMU'], rows));
  console.log('\ntsvmm\'s start, each phase\'s end (median s after the spawn, all its boots)');
  console.log(table(['phase', 's'], phaseRows));
}

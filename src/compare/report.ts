// The report of `tsvmm compare` in three forms: a table for the terminal, JSON (the report as it
// is), and a self-contained HTML page (inline CSS and SVG charts, no external resources) with
// every figure, its unit, its runs, median and spread, the machine and the date.

import { SUBJECTS, SUBJECT_LABEL, type CompareReport, type Figure, type Measurement } from './model.js';
import { niceCeil } from './stats.js';

/** A number with about three significant digits, no exponent for the sizes we meet. */
export function fmt(v: number): string {
  const a = Math.abs(v);
  if (Number.isInteger(v) || a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

export function ratio(r: number | null): string {
  if (r === null) return '';
  return `×${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r.toPrecision(2)}`;
}

/** A figure's median as a reader should take it: "n/a", "≥ 100 (cap)" for a lower bound, or the number. */
export function figureValue(f: Figure | undefined): string {
  if (!f) return '-';
  if (!f.summary) return 'n/a';
  return f.atLeast ? `≥ ${fmt(f.summary.median)} (${f.atLeast})` : fmt(f.summary.median);
}

function cell(f: Figure | undefined): string {
  if (!f?.summary || f.atLeast) return figureValue(f);
  const s = f.summary;
  return s.n > 1 ? `${fmt(s.median)} (${fmt(s.q1)}–${fmt(s.q3)})` : fmt(s.median);
}

/** What each column ran, and what this machine's KVM does to the figures: said in every report. */
export function contextLines(r: CompareReport): string[] {
  const m = r.machine;
  return [
    'native: the workload program (compare-work, static C) as a plain process on the host.',
    'container: the same program in a tsvmm container (namespaces, cgroups, a busybox root filesystem), started through the library in this process.',
    'VM: test.elf, a tiny test kernel built from guests/ (not a Linux boot), in a tsvmm VM: a Node VMM process with a thread per vCPU; most of a VM\'s host memory is that Node process, not the guest. For disk and network, virtio.elf, a test kernel of the same kind with our own minimal virtio drivers (not Linux\'s).',
    'Network: the container\'s datagrams cross a veth pair and a bridge inside the host kernel; the VM\'s cross its virtio-net queues, the VMM (which reads and writes its tap one frame at a time, no offloads) and a tap.',
    m.kvm && m.nestedKvm
      ? 'This machine\'s KVM is nested on a software-assisted backend: every VM exit costs about 8-9 µs (several times hardware VMX/SVM) and guest CPL-0 code is emulated, so the VM\'s exit, I/O, network, start and snapshot figures are inflated (the guest\'s drivers run at CPL 0); its CPL-3 compute runs natively.'
      : m.kvm ? 'KVM is hardware-assisted here: the VM figures are what VMX/SVM gives.' : 'No usable KVM here: the VM figures are n/a.',
  ];
}

/** What each kind isolates (facts about how tsvmm builds them, not measurements). */
export const ISOLATION: ReadonlyArray<readonly [string, string, string]> = [
  ['kernel', 'shared with the host: a kernel bug reached through a system call reaches the host', 'its own (the guest\'s); the host kernel sees only KVM ioctls and the VMM\'s calls'],
  ['memory', 'a memory cgroup limit on the host\'s pages', 'its own guest-physical RAM of a fixed size, mapped by the VMM'],
  ['CPU', 'cgroup quota and shares; the host scheduler runs its processes', 'vCPU threads of the VMM, scheduled by the host like any thread'],
  ['files', 'its own root (pivot_root, overlayfs); the host\'s files are not mounted', 'only the disk images and files given to the VMM'],
  ['processes', 'a PID namespace: it sees only its own', 'the guest\'s own; host processes do not exist for it'],
  ['network', 'a network namespace (none, or a veth pair)', 'virtio-net on a tap, if given one'],
  ['devices', 'the device cgroup: null, zero, random, its own pty', 'only the emulated devices the VMM offers'],
  ['system calls', 'every host system call, less what the (optional) seccomp filter refuses', 'none: a guest makes VM exits, which the VMM decodes'],
];

export function machineLine(r: CompareReport): string {
  const m = r.machine;
  return `${m.cpuModel}, ${m.cpus} CPUs, ${Math.round(m.memoryMiB / 1024)} GiB; ${m.kernel}; nested KVM: ${m.kvm ? (m.nestedKvm ? 'yes' : 'no') : 'no KVM'}; cgroups ${m.cgroups}; Node ${m.node}`;
}

/** The terminal table: median (interquartile range) per contender, and the ratios to native. */
export function renderTable(r: CompareReport): string {
  const header = ['measurement', 'unit', 'native', 'container', 'VM', 'ctr/native', 'VM/native'];
  const rows = r.measurements.map((m) => {
    const by = (s: string) => m.figures.find((f) => f.subject === s);
    return [m.title, m.unit, cell(by('native')), cell(by('container')), cell(by('vm')), ratio(by('container')?.vsNative ?? null), ratio(by('vm')?.vsNative ?? null)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [
    `tsvmm compare, ${r.date} (${r.quick ? 'quick, ' : ''}${r.options.runs} runs each; median (q1–q3))`,
    `machine: ${machineLine(r)}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ];
  // One line per contender and reason, naming the measurements it applies to.
  const na = new Map<string, string[]>();
  for (const m of r.measurements) {
    for (const f of m.figures) {
      if (f.na === undefined) continue;
      const key = `${SUBJECT_LABEL[f.subject]}\u0000${f.na}`;
      na.set(key, [...(na.get(key) ?? []), m.title]);
    }
  }
  if (na.size) out.push('', ...[...na].map(([key, titles]) => { const [who, why] = key.split('\u0000'); return `n/a: ${who} (${titles.join('; ')}): ${why}`; }));
  const notes = r.measurements.flatMap((m) => m.notes.map((n) => `${m.title}: ${n}`));
  if (notes.length) out.push('', ...notes);
  const warnings = r.measurements.flatMap((m) => (m.warnings ?? []).map((w) => `warning: ${m.title}: ${w}`));
  if (warnings.length) out.push('', ...warnings);
  out.push('', ...contextLines(r));
  return `${out.join('\n')}\n`;
}

export function renderJson(r: CompareReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const COLOURS: Record<string, string> = { native: '#4c78a8', container: '#59a14f', vm: '#e15759' };

/** Round ticks (steps of 1, 2 or 5 × 10^k) from 0 to at least `hi`, about `count` of them. */
export function niceTicks(hi: number, count = 5): number[] {
  if (!(hi > 0)) return [0, 1];
  const raw = hi / count;
  const step = niceCeil(raw);
  const ticks: number[] = [];
  for (let t = 0; t < hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks.length * step).toPrecision(12)));
  return ticks;
}

/** Ticks of a log axis over [lo, hi]: 1, 2 and 5 × 10^k, or only powers of ten over many decades. */
export function logTicks(lo: number, hi: number): number[] {
  const decades = Math.log10(hi / lo);
  const steps = decades > 4 ? [1] : decades > 2 ? [1, 3] : [1, 2, 5];
  const ticks: number[] = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of steps) {
      const t = Number((m * 10 ** k).toPrecision(12));
      if (t >= lo && t <= hi) ticks.push(t);
    }
  }
  return ticks;
}

/** Rough width of a label in the charts' 11 px font, for keeping labels apart. */
const labelWidth = (text: string) => text.length * 6.5;

/**
 * A horizontal chart: per contender, the q1–q3 box, the min–max whisker, the median (its value
 * above it) and every run; under them an axis on round values, its unit on the left. A log axis
 * when the values span more than 30×, with enough labels to read it.
 */
export function chart(m: Measurement): string {
  const figs = SUBJECTS.map((s) => m.figures.find((f) => f.subject === s)).filter((f): f is Figure => f !== undefined);
  const values = figs.flatMap((f) => f.runs).filter((v) => v > 0);
  const W = 640; const left = 100; const right = 24; const rowH = 40; const top = 8; const axisH = 40;
  const H = top + figs.length * rowH + axisH;
  if (values.length === 0) return `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(m.title)}: nothing measured"></svg>`;
  const lo = Math.min(...values); const hi = Math.max(...values);
  const log = hi / lo > 30;
  const ticks = log ? logTicks(lo / 1.3, hi * 1.3) : niceTicks(hi);
  const x0 = log ? Math.log10(lo / 1.3) : 0;
  const x1 = log ? Math.log10(hi * 1.3) : ticks[ticks.length - 1]!;
  const x = (v: number) => left + ((log ? Math.log10(Math.max(v, lo / 1.3)) : v) - x0) / (x1 - x0) * (W - left - right);
  const parts: string[] = [];
  figs.forEach((f, i) => {
    const y = top + i * rowH; const cy = y + rowH / 2 + 6; const colour = COLOURS[f.subject]!;
    parts.push(`<text x="${left - 10}" y="${cy + 4}" text-anchor="end" class="who">${SUBJECT_LABEL[f.subject]}</text>`);
    if (!f.summary) {
      parts.push(`<text x="${left + 4}" y="${cy + 4}" class="na">n/a</text>`);
      return;
    }
    const s = f.summary;
    parts.push(`<line x1="${x(s.min).toFixed(1)}" x2="${x(s.max).toFixed(1)}" y1="${cy}" y2="${cy}" stroke="${colour}" stroke-width="1.5"/>`);
    parts.push(`<rect x="${x(s.q1).toFixed(1)}" y="${cy - 7}" width="${Math.max(1, x(s.q3) - x(s.q1)).toFixed(1)}" height="14" fill="${colour}" fill-opacity="0.35" stroke="${colour}"/>`);
    parts.push(`<line x1="${x(s.median).toFixed(1)}" x2="${x(s.median).toFixed(1)}" y1="${cy - 9}" y2="${cy + 9}" stroke="${colour}" stroke-width="3"><title>median ${fmt(s.median)} ${esc(m.unit)}</title></line>`);
    for (const v of f.runs) parts.push(`<circle cx="${x(v).toFixed(1)}" cy="${cy}" r="2.5" fill="#222" fill-opacity="0.6"><title>${fmt(v)} ${esc(m.unit)}</title></circle>`);
    // The median's value above its line, kept inside the plot.
    const label = figureValue(f);
    const half = labelWidth(label) / 2;
    const at = Math.min(W - right - half, Math.max(left + half, x(s.median)));
    parts.push(`<text x="${at.toFixed(1)}" y="${cy - 12}" text-anchor="middle" class="val">${esc(label)}</text>`);
  });
  const axisY = top + figs.length * rowH + 6;
  parts.push(`<line x1="${left}" x2="${W - right}" y1="${axisY}" y2="${axisY}" stroke="#999"/>`);
  // Tick labels that would touch the one before are left out (the tick stays).
  let lastEnd = -Infinity;
  for (const t of ticks) {
    const tx = x(t);
    parts.push(`<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${axisY}" y2="${axisY + 4}" stroke="#999"/>`);
    const text = String(Number(t.toPrecision(3))); // a round value needs no trailing zeros: 0.5, not 0.500
    const w = labelWidth(text);
    const start = Math.min(W - w, tx - w / 2);
    if (start < lastEnd + 6) continue;
    parts.push(`<text x="${(start + w / 2).toFixed(1)}" y="${axisY + 16}" text-anchor="middle" class="tick">${text}</text>`);
    lastEnd = start + w;
  }
  parts.push(`<text x="${left - 10}" y="${axisY + 16}" text-anchor="end" class="tick unit">${esc(m.unit)}</text>`);
  if (log) parts.push(`<text x="${left - 10}" y="${axisY + 30}" text-anchor="end" class="tick unit">log scale</text>`);
  return `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(m.title)} in ${esc(m.unit)}">${parts.join('')}</svg>`;
}

function figureRow(f: Figure): string {
  const s = f.summary;
  const cells = s
    ? [figureValue(f), `${fmt(s.q1)}–${fmt(s.q3)}`, `${fmt(s.min)}–${fmt(s.max)}`, f.vsNative === null ? '' : ratio(f.vsNative), f.runs.map(fmt).join(', ')]
    : ['n/a', '', '', '', esc(f.na ?? '')];
  return `<tr><th scope="row">${SUBJECT_LABEL[f.subject]}</th><td class="method">${esc(f.method)}</td><td>${esc(f.unit)}</td>${cells.map((c, i) => `<td${i === 4 ? ' class="runs"' : ''}>${c}</td>`).join('')}</tr>`;
}

export function renderHtml(r: CompareReport): string {
  const m = r.machine;
  const sections = r.measurements.map((ms) => `
<section id="${esc(ms.id)}">
  <h2>${esc(ms.title)} <span class="unit">(${esc(ms.unit)})</span></h2>
  <p>${esc(ms.description)}</p>
  ${chart(ms)}
  <table>
    <thead><tr><th></th><th>what ran</th><th>unit</th><th>median</th><th>q1–q3</th><th>min–max</th><th>vs native</th><th>runs</th></tr></thead>
    <tbody>${ms.figures.map(figureRow).join('')}</tbody>
  </table>
  ${ms.notes.length ? `<ul class="notes">${ms.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
  ${ms.warnings?.length ? `<ul class="warnings">${ms.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
</section>`).join('\n');
  const isolation = `
<section id="isolation">
  <h2>What each one isolates</h2>
  <p>How tsvmm builds them (not a measurement): what stands between the workload and the host.</p>
  <table class="isolation">
    <thead><tr><th></th><th>container</th><th>VM</th></tr></thead>
    <tbody>${ISOLATION.map(([what, ctr, vm]) => `<tr><th scope="row">${esc(what)}</th><td>${esc(ctr)}</td><td>${esc(vm)}</td></tr>`).join('')}</tbody>
  </table>
</section>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tsvmm compare: VMs and containers, ${esc(r.date)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.unit { font-weight: normal; color: #666; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; vertical-align: top; }
td.method, td.runs { text-align: left; } td.runs { font-family: ui-monospace, monospace; font-size: 12px; max-width: 22em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; } dt { font-weight: 600; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #222; } svg.chart .tick { fill: #666; font-size: 11px; }
svg.chart .na { fill: #999; font-style: italic; } svg.chart .val { font-size: 11px; fill: #444; }
.notes { color: #444; } .warnings { color: #a33; } table.isolation td { text-align: left; max-width: 30em; }
</style>
</head>
<body>
<h1>tsvmm compare: the same workloads natively, in a container and in a VM</h1>
<dl>
  <dt>date</dt><dd>${esc(r.date)} (the run took ${(r.durationMs / 1000).toFixed(1)} s)</dd>
  <dt>machine</dt><dd>${esc(m.hostname)}: ${esc(m.cpuModel)}, ${m.cpus} CPUs, ${m.memoryMiB} MiB</dd>
  <dt>kernel</dt><dd>${esc(m.kernel)}</dd>
  <dt>nested KVM</dt><dd>${m.kvm ? (m.nestedKvm ? 'yes' : 'no') : 'no KVM'}: ${esc(m.kvmDetail)}</dd>
  <dt>cgroups</dt><dd>${esc(m.cgroups)}</dd>
  <dt>software</dt><dd>tsvmm ${esc(r.version)}, Node ${esc(m.node)}</dd>
  <dt>options</dt><dd>${esc(Object.entries(r.options).map(([k, v]) => `${k}=${String(v)}`).join(', '))}</dd>
</dl>
<p>Each figure is measured over the runs listed (after one untimed warm-up run), contenders
interleaved round by round. Charts: the box spans the first to third quartile, the thick line is
the median, the whisker min to max, the dots are the runs. "vs native" is the median over the
native median. A figure that could not be measured says why (n/a) and has no number; "≥ N (cap)"
is a count that stopped at the test's cap, not at the limit measured. Warnings say when a figure's
runs spread widely or the machine was busy.</p>
<ul class="context">${contextLines(r).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
${sections}
${isolation}
</body>
</html>
`;
}

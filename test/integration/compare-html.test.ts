// The HTML report of `tsvmm compare` in a real browser (headless Chromium): the committed example
// in docs/ and reports drawn from awkward figures (log axes, capped counts, n/a, close values).
// In the page, every label of every chart is measured (getBoundingClientRect): none may overlap
// another or leave its chart. A screenshot is taken and must be a PNG of the page.

import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { measured, notAvailable, withRatios, type CompareReport, type Measurement } from '../../src/compare/model.js';
import { renderHtml } from '../../src/compare/report.js';
import { chromiumMissingReason, dumpDom, screenshot } from '../helpers/chromium.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-report-html-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Problem {
  section: string;
  kind: 'overlap' | 'outside';
  a: string;
  b?: string;
}

/**
 * Runs in the page: each chart's text elements, measured as laid out; pairs whose boxes
 * intersect (by more than half a pixel) and texts that leave the chart's box.
 */
const CHECK = `(() => {
  const problems = [];
  const charts = [...document.querySelectorAll('svg.chart')];
  for (const svg of charts) {
    const section = svg.closest('section') ? svg.closest('section').id : '';
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map((t) => ({ text: t.textContent, r: t.getBoundingClientRect() }));
    for (const t of texts) {
      if (t.r.left < box.left - 0.5 || t.r.right > box.right + 0.5 || t.r.top < box.top - 0.5 || t.r.bottom > box.bottom + 0.5) problems.push({ section, kind: 'outside', a: t.text });
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i].r, b = texts[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) problems.push({ section, kind: 'overlap', a: texts[i].text, b: texts[j].text });
      }
    }
  }
  const out = document.createElement('pre');
  out.id = 'tsvmm-check';
  out.textContent = JSON.stringify({ charts: charts.length, problems });
  document.body.appendChild(out);
})();`;

function checkInBrowser(html: string, name: string): { charts: number; problems: Problem[] } {
  const file = path.join(dir, `${name}.html`);
  writeFileSync(file, html.replace('</body>', `<script>${CHECK}</script>\n</body>`));
  const dom = dumpDom(file);
  const m = /<pre id="tsvmm-check">([^<]*)<\/pre>/.exec(dom);
  if (!m) throw new Error(`the check did not run in ${name}:\n${dom.slice(-1000)}`);
  return JSON.parse(m[1]!.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')) as { charts: number; problems: Problem[] };
}

/** A report of awkward figures: a log axis over five decades, a capped count, n/a, values close together, long numbers and unit. */
function awkward(): CompareReport {
  const m = (id: string, unit: string, figs: Measurement['figures'], higherIsBetter = false): Measurement =>
    withRatios({ id, title: id, unit, higherIsBetter, description: id, notes: [], figures: figs });
  return {
    tool: 'tsvmm compare', version: '0.1.0', date: '2026-12-06T00:00:00.000Z', quick: false, options: { runs: 5 }, durationMs: 1000,
    machine: { hostname: 'test', kernel: 'Linux 6.18', cpuModel: 'x', cpus: 2, memoryMiB: 1024, kvm: true, nestedKvm: true, kvmDetail: 'nested', cgroups: 'v1', node: 'v20' },
    measurements: [
      m('exits', 'µs/op', [measured('native', 'a', 'µs/op', [0.17, 0.18, 0.2]), measured('container', 'b', 'µs/op', [0.19, 0.2, 0.21]), measured('vm', 'c', 'µs/op', [9.1, 9.6, 12])]),
      m('decades', 'ms', [measured('native', 'a', 'ms', [0.003, 0.004]), measured('container', 'b', 'ms', [2, 3]), measured('vm', 'c', 'ms', [900, 1200])]),
      m('density', 'instances', [{ ...measured('container', 'b', 'instances', [100, 100, 100]), atLeast: 'cap' }, measured('vm', 'c', 'instances', [14, 15, 13])], true),
      m('close', 'Mops/s', [measured('native', 'a', 'Mops/s', [864, 870]), measured('container', 'b', 'Mops/s', [839, 850]), measured('vm', 'c', 'Mops/s', [1078, 889])], true),
      m('na', 'ms', [notAvailable('container', 'b', 'ms', 'none'), measured('vm', 'c', 'ms', [86.2, 90])]),
      m('wide', 'MB/s', [measured('native', 'a', 'MB/s', [8213, 9000]), measured('container', 'b', 'MB/s', [8501, 8400]), measured('vm', 'c', 'MB/s', [1501, 1923])], true),
      m('packets', 'packets/s', [measured('native', 'a', 'packets/s', [124435, 93471, 130301]), measured('container', 'b', 'packets/s', [68969, 45833, 73503]), measured('vm', 'c', 'packets/s', [2453, 2329, 2884])], true),
    ],
  };
}

describe.skipIf(chromiumMissingReason)('the HTML report in headless Chromium', () => {
  it('the committed example (docs/compare-example.html): every chart laid out, no label over another or out of its chart', () => {
    const html = readFileSync('docs/compare-example.html', 'utf8');
    const result = checkInBrowser(html, 'example');
    expect(result.charts).toBe((html.match(/<svg class="chart"/g) ?? []).length);
    expect(result.charts).toBeGreaterThan(8);
    expect(result.problems).toEqual([]);
  }, 120_000);

  it('a report of awkward figures: log axes over decades, a capped count, n/a, close values', () => {
    const result = checkInBrowser(renderHtml(awkward()), 'awkward');
    expect(result.charts).toBe(7);
    expect(result.problems).toEqual([]);
  }, 120_000);

  it('takes a screenshot of the example', () => {
    const src = path.join(dir, 'shot.html');
    copyFileSync('docs/compare-example.html', src);
    const png = path.join(dir, 'example.png');
    screenshot(src, png, 1200, 1600);
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(statSync(png).size).toBeGreaterThan(20_000);
  }, 120_000);
});

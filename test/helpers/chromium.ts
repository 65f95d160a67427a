// Debian's chromium, headless, for checking the HTML that tsvmm writes in a real browser: the
// page's DOM after its scripts ran (--dump-dom) and screenshots. Its own profile directory, no
// network, no GPU; --no-sandbox because tests run as root.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const chromiumMissingReason: string | undefined =
  spawnSync('chromium', ['--version'], { encoding: 'utf8' }).status === 0
    ? undefined
    : 'chromium is not installed: browser checks of the HTML report skipped (scripts/ensure-test-deps.sh installs it)';

export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage',
  '--disable-extensions', '--disable-sync', '--no-first-run', '--mute-audio', '--hide-scrollbars', '--disable-features=Translate',
];

function chromium(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const profile = mkdtempSync(path.join(tmpdir(), 'tsvmm-chromium-'));
  try {
    const r = spawnSync('chromium', [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, ...args], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
    return { stdout: r.stdout, stderr: r.stderr, status: r.status };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The page's DOM as serialized after its scripts ran. */
export function dumpDom(file: string): string {
  const r = chromium(['--virtual-time-budget=5000', '--dump-dom', `file://${path.resolve(file)}`]);
  if (r.status !== 0) throw new Error(`chromium --dump-dom ${file} exited with ${r.status}: ${r.stderr.slice(-500)}`);
  return r.stdout;
}

/** A PNG of the page in a window of `width` x `height` CSS pixels. */
export function screenshot(file: string, png: string, width: number, height: number): void {
  const r = chromium([`--screenshot=${path.resolve(png)}`, `--window-size=${width},${height}`, `file://${path.resolve(file)}`]);
  if (r.status !== 0) throw new Error(`chromium --screenshot of ${file} exited with ${r.status}: ${r.stderr.slice(-500)}`);
}

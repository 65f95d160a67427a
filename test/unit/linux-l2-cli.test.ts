// The nested Linux runner's command line (scripts/linux-l2/run.mjs): help and bad options are
// answered before anything is built or booted.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const runner = (...args: string[]) => spawnSync('node', ['scripts/linux-l2/run.mjs', ...args], { encoding: 'utf8', timeout: 20_000 });

describe('scripts/linux-l2/run.mjs options', () => {
  it('--help prints the usage on stdout and exits 0', () => {
    const r = runner('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: node scripts\/linux-l2\/run.mjs /);
    expect(r.stdout).toContain('scenarios: boot1, devices, smp2, smp4');
    expect(r.stderr).toBe('');
  });

  it('an unknown option is one line and the usage, exit 2, no stack trace', () => {
    const r = runner('--bogus');
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("linux-l2: Unknown option '--bogus'");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a number that is not one is refused before the build', () => {
    const r = runner('--silence', 'soon');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('linux-l2: --silence soon: expected a positive whole number');
  });
});

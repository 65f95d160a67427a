import { mkdtempSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineReader } from '../../src/api/protocol.js';
import { checkName, ensureRuntimeDir, listInstances, writeRecord } from '../../src/api/runtime-dir.js';

describe('control protocol lines', () => {
  it('splits a stream into lines however it is chunked, and keeps the rest', () => {
    const reader = new LineReader();
    const lines: string[] = [];
    reader.push('{"id":1,"op":"st', (l) => lines.push(l));
    reader.push('atus"}\n{"id":2', (l) => lines.push(l));
    reader.push(',"op":"pause"}\n\nbytes', (l) => lines.push(l));
    expect(lines).toEqual(['{"id":1,"op":"status"}', '{"id":2,"op":"pause"}']);
    expect(reader.takeRest()).toBe('bytes');
  });

  it('does not buffer without end for a client that never sends a newline', () => {
    const reader = new LineReader();
    reader.push('x'.repeat(2 << 20), () => {});
    expect(reader.takeRest()).toBe('');
  });
});

describe('runtime directory', () => {
  it('is made owner-only', () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-rt-')), 'run');
    ensureRuntimeDir(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('forgets instances whose process is gone and skips stray files', () => {
    const dir = ensureRuntimeDir(path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-rt-')), 'run'));
    writeRecord({ name: 'alive', kind: 'vm', pid: process.pid, startedAt: Date.now(), cpus: 1, memory: 1, image: 'k' }, dir);
    writeRecord({ name: 'dead', kind: 'vm', pid: 2 ** 22 + 12345, startedAt: 2, cpus: 1, memory: 1, image: 'k' }, dir);
    // A record older than the process that now has its pid: that pid was reused, the owner is gone.
    writeRecord({ name: 'reused', kind: 'vm', pid: process.pid, startedAt: Date.now() - 3_600_000, cpus: 1, memory: 1, image: 'k' }, dir);
    writeFileSync(path.join(dir, 'junk.json'), '{not json');
    expect(listInstances(dir).map((r) => r.name)).toEqual(['alive']);
    expect(existsSync(path.join(dir, 'dead.json'))).toBe(false);
    expect(existsSync(path.join(dir, 'reused.json'))).toBe(false);
  });

  it('accepts only names that are safe as file names', () => {
    expect(checkName('web-1.test_a')).toBe('web-1.test_a');
    for (const bad of ['', '../x', 'a/b', '-lead', 'x'.repeat(64), 'sp ace']) expect(() => checkName(bad)).toThrow(/name/);
  });
});

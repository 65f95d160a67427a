// Compiles and runs a small C program with the machine's gcc: lets tests ask the real kernel
// headers for sizes, offsets and ioctl numbers instead of trusting our own tables.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function runC(source: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-c-'));
  try {
    const file = path.join(dir, 'probe.c');
    const exe = path.join(dir, 'probe');
    writeFileSync(file, source);
    execFileSync('gcc', ['-std=gnu11', '-o', exe, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    return execFileSync(exe, { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

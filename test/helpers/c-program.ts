// Compiles and runs a small C program with the machine's gcc: lets tests ask the real kernel
// headers for sizes, offsets and ioctl numbers instead of trusting our own tables.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Compiles `source` into the executable `exe`: static, so that it also runs in a container's root. */
export function compileStaticC(source: string, exe: string): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-c-'));
  try {
    const file = path.join(dir, 'program.c');
    writeFileSync(file, source);
    execFileSync('gcc', ['-std=gnu11', '-static', '-O2', '-o', exe, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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

// Snapshot memory can be checked (`tsvmm verify`, `restore --verify`), and a snapshot
// file truncated under a VM restored from it ends that VM with an error saying so.

import { chmodSync, chownSync, openSync, readSync, statSync, truncateSync, writeSync, closeSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { expectOneLineError, tsvmm } from '../helpers/cli.js';
import { openSnapshot } from '../../src/snapshot/index.js';
import { readOutcome } from '../../src/api/runtime-dir.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-verify-'));
const tag = `${process.pid}`;

/** Flips one bit of guest RAM in the file: a page the guest wrote, 17 bytes in. */
async function flipRamByte(file: string): Promise<void> {
  const snapshot = await openSnapshot(file);
  const ram = snapshot.file.memorySection('ram0');
  await snapshot.close();
  const at = ram.offset + 0x1000000 + 5 * 4096 + 17; // mode=touch writes from 16 MiB up
  const fd = openSync(file, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, at);
  byte[0] = byte[0]! ^ 0x01;
  writeSync(fd, byte, 0, 1, at);
  closeSync(fd);
}

describe.skipIf(kvmMissingReason)('snapshot memory checks', () => {
  const names: string[] = [];
  afterAll(() => { for (const n of names) tsvmm(['stop', n]); });
  const file = path.join(dir, 'vm.snap');

  it('verify and restore --verify catch one flipped bit of guest RAM', async () => {
    const name = `verify-${tag}`;
    names.push(name);
    expect(tsvmm(['run', '--detach', '--name', name, '--kernel', TEST_ELF, '--cmdline', 'mode=touch bytes=16777216 pause=20000', '--mem', '64M']).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(tsvmm(['snapshot', name, file]).code).toBe(0);
    tsvmm(['stop', name]);

    const intact = tsvmm(['verify', file]);
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.stdout).toContain(`${file}: intact: every checksum matches (64 MiB of guest memory)`);

    await flipRamByte(file);
    expectOneLineError(tsvmm(['verify', file]), /memory section "ram0" is corrupt \(CRC 0x[0-9a-f]+, expected 0x[0-9a-f]+\)/);
    expectOneLineError(tsvmm(['restore', '--verify', file]), /memory section "ram0" is corrupt/);
  });

  it('`verify` is a name like any other: `tsvmm snapshot verify FILE` saves the VM named verify', async () => {
    const saved = path.join(dir, 'named-verify.snap');
    // Before a VM takes the name, the old way to check a file points to the new one.
    expectOneLineError(tsvmm(['snapshot', 'verify', saved]), /no VM or container named "verify" is running .*; to check a snapshot file, `tsvmm verify FILE`/);
    names.push('verify'); // the runtime directory is this test run's own (vitest.config.ts)
    const run = tsvmm(['run', '--detach', '--name', 'verify', '--kernel', TEST_ELF, '--cmdline', 'mode=touch bytes=4096 pause=20000', '--mem', '32M']);
    expect(run.code, run.stderr).toBe(0);
    const snap = tsvmm(['snapshot', 'verify', saved]);
    expect(snap.code, snap.stderr).toBe(0);
    expect(snap.stderr).toMatch(/verify saved to /);
    tsvmm(['stop', 'verify']);
    const check = tsvmm(['verify', saved]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain(`${saved}: intact: every checksum matches (32 MiB of guest memory)`);
  });

  it('a snapshot file truncated under a VM restored from it: the VM ends with an error that says so', async () => {
    const name = `verify-src-${tag}`;
    names.push(name);
    expect(tsvmm(['run', '--detach', '--name', name, '--kernel', TEST_ELF, '--cmdline', 'mode=touch bytes=33554432 pause=20000', '--mem', '64M']).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const source = path.join(dir, 'source.snap');
    expect(tsvmm(['snapshot', name, source]).code).toBe(0);
    tsvmm(['stop', name]);
    const restored = `verify-r-${tag}`;
    names.push(restored);
    const r = tsvmm(['restore', source, '--detach', '--name', restored]);
    expect(r.code, r.stderr).toBe(0);
    truncateSync(source, 8192);
    await expect.poll(() => tsvmm(['ps', '--json']).stdout, { timeout: 10_000 }).not.toContain(`"${restored}"`);
    expect(readOutcome(restored)?.outcome).toContain(`the snapshot file ${source} this VM was restored from was truncated (`);
  });

  it('a snapshot is written read-only, replaced by rename, and restored only when no one else may write it', async () => {
    const name = `verify-mode-${tag}`;
    names.push(name);
    expect(tsvmm(['run', '--detach', '--name', name, '--kernel', TEST_ELF, '--cmdline', 'mode=touch bytes=4096 pause=20000', '--mem', '32M']).code).toBe(0);
    // In a directory nobody may pass through, so that only the file's own mode decides below.
    const reachable = mkdtempSync(path.join(tmpdir(), 'tsvmm-verify-mode-'));
    chmodSync(reachable, 0o711);
    const file = path.join(reachable, 'mode.snap');
    expect(tsvmm(['snapshot', name, file]).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o400);
    // Its owner's in-place writers (here nobody's, as root would pass) are refused; with the
    // owner's write bit they would not be.
    chownSync(file, 65534, 65534);
    const writeAsOwner = () => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', `: >> ${file}`], { encoding: 'utf8' });
    const refused = writeAsOwner();
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied/);
    chmodSync(file, 0o600);
    expect(writeAsOwner().status).toBe(0);
    chmodSync(file, 0o400);
    chownSync(file, process.getuid!(), process.getgid!());
    // A second snapshot to the same path replaces the read-only file.
    const inode = statSync(file).ino;
    expect(tsvmm(['snapshot', name, file]).code).toBe(0);
    expect(statSync(file).ino).not.toBe(inode);
    tsvmm(['stop', name]);

    chmodSync(file, 0o620);
    expectOneLineError(tsvmm(['restore', file]), new RegExp(`${file}: its group may write it \\(mode 0620\\) and could change the memory of a VM restored from it .*\`chmod go-w\``));
    chmodSync(file, 0o602);
    expectOneLineError(tsvmm(['restore', file]), /: everyone may write it \(mode 0602\)/);
    chmodSync(file, 0o400);
    chownSync(file, 65534, 65534);
    expectOneLineError(tsvmm(['restore', file]), new RegExp(`${file}: belongs to uid 65534, who could change the memory of a VM restored from it`));
  });
});

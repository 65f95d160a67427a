import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE, SnapshotError } from '../../src/snapshot/format.js';
import { openSnapshot } from '../../src/snapshot/reader.js';
import { writeSnapshot, type MemorySource, type SnapshotContents } from '../../src/snapshot/writer.js';
import { prng, sameBytes, sampleVm, tempDirectory } from '../helpers/snapshot-fixtures.js';

const dir = tempDirectory();
afterAll(() => dir.remove());
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const vm = sampleVm(5);

let counter = 0;
/** A fresh directory holding a good snapshot `vm.snap`, or nothing. */
async function setUp(withPrevious: boolean): Promise<{ dir: string; target: string; previous?: Buffer }> {
  const sub = path.join(dir.path, `case-${counter++}`);
  const target = path.join(sub, 'vm.snap');
  mkdirSync(sub);
  if (!withPrevious) return { dir: sub, target };
  await writeSnapshot(target, vm.contents);
  return { dir: sub, target, previous: readFileSync(target) };
}

const withSource = (source: MemorySource): SnapshotContents => ({
  ...vm.contents, memory: [{ ...vm.contents.memory[0]!, source }, vm.contents.memory[1]!],
});

/** A child process writing a snapshot of `mib` MiB of memory, slowly (test/helpers/snapshot-writer-child.ts). */
function spawnWriter(target: string, mib: number) {
  return spawn(process.execPath, [
    path.join(root, 'node_modules/vite-node/vite-node.mjs'), path.join(root, 'test/helpers/snapshot-writer-child.ts'), target, String(mib),
  ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('atomic snapshot writes', () => {
  it.each([true, false])('a memory source that fails half-way leaves the target as it was (previous file: %s)', async (withPrevious) => {
    const { dir: sub, target, previous } = await setUp(withPrevious);
    const failure = new Error('guest memory went away');
    const source = (offset: number, length: number) => {
      if (offset >= vm.ram.length / 2) throw failure;
      return vm.ram.subarray(offset, offset + length);
    };
    const error = await writeSnapshot(target, withSource(source), { chunkSize: 2 * PAGE_SIZE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotError);
    expect(error).toMatchObject({ code: 'SNAPSHOT_WRITE_FAILED', message: 'reading region "ram" failed: guest memory went away', cause: failure });
    expect(readdirSync(sub)).toEqual(withPrevious ? ['vm.snap'] : []);
    if (previous) expect(sameBytes(readFileSync(target), previous)).toBe(true);
  });

  it('a cancelled snapshot leaves the target as it was, and lets the source clean up', async () => {
    const { dir: sub, target, previous } = await setUp(true);
    const controller = new AbortController();
    let released = false;
    const source = (function* () {
      try {
        for (let at = 0; at < vm.ram.length; at += PAGE_SIZE) yield vm.ram.subarray(at, at + PAGE_SIZE);
      } finally {
        released = true;
      }
    })();
    const writing = writeSnapshot(target, withSource(source), {
      signal: controller.signal,
      onProgress: ({ bytesDone }) => { if (bytesDone >= 5 * PAGE_SIZE) controller.abort(); },
    });
    await expect(writing).rejects.toMatchObject({ code: 'SNAPSHOT_ABORTED' });
    expect(released).toBe(true);
    expect(readdirSync(sub)).toEqual(['vm.snap']);
    expect(sameBytes(readFileSync(target), previous!)).toBe(true);
  });

  it('an I/O error is reported with its cause and leaves nothing behind', async () => {
    const missing = path.join(dir.path, 'no-such-directory', 'vm.snap');
    await expect(writeSnapshot(missing, vm.contents)).rejects.toMatchObject({
      code: 'SNAPSHOT_WRITE_FAILED', message: expect.stringMatching(/^.*vm\.snap: cannot write snapshot: no such file$/),
    });
    expect(existsSync(path.dirname(missing))).toBe(false);
  });

  it('a reader of the old file keeps reading the old file after it is replaced', async () => {
    const { target } = await setUp(true);
    const old = await openSnapshot(target);
    const other = sampleVm(6);
    await writeSnapshot(target, other.contents);
    expect(sameBytes(await old.readMemory('ram', 0, vm.ram.length), vm.ram)).toBe(true);
    await old.close();
    const replaced = await openSnapshot(target);
    expect(sameBytes(await replaced.readMemory('ram', 0, other.ram.length), other.ram)).toBe(true);
    await replaced.close();
  });

  it.each([true, false])('a writer killed with SIGKILL half-way leaves the previous file or none, never a partial one (previous file: %s)',
    async (withPrevious) => {
      const { dir: sub, target, previous } = await setUp(withPrevious);
      const child = spawnWriter(target, 64);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const killedAt = await new Promise<number>((resolve, reject) => {
        let buffered = '';
        child.stdout.on('data', (d: Buffer) => {
          buffered += d.toString();
          const last = /progress (\d+) (\d+)\n$/.exec(buffered.slice(-100))?.slice(1).map(Number);
          if (last && last[0]! >= last[1]! / 4) {
            child.kill('SIGKILL');
            resolve(last[0]! / last[1]!);
          }
        });
        child.on('exit', () => reject(new Error(`the child ended before it was killed: ${buffered.slice(-200)} ${stderr}`)));
      });
      const exit = await new Promise<NodeJS.Signals | null>((resolve) => {
        if (child.signalCode !== null) resolve(child.signalCode);
        else child.on('exit', (_code, signal) => resolve(signal));
      });
      expect(exit).toBe('SIGKILL');
      expect(killedAt).toBeLessThan(1);

      if (previous) {
        expect(sameBytes(readFileSync(target), previous)).toBe(true);
        await (await openSnapshot(target)).close();
      } else {
        expect(existsSync(target)).toBe(false);
      }
      // kill -9 leaves the temporary file: it has no header, so it is not even taken for a snapshot...
      const leftovers = readdirSync(sub).filter((n) => n !== 'vm.snap');
      expect(leftovers).toEqual([expect.stringMatching(new RegExp(`^\\.vm\\.snap\\.${child.pid}-[0-9a-f]{8}\\.tmp$`))]);
      await expect(openSnapshot(path.join(sub, leftovers[0]!))).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_A_SNAPSHOT' });

      // ...and the next write to the same target removes it, but not the file of a writer still alive.
      const live = path.join(sub, `.vm.snap.${process.pid}-0123abcd.tmp`);
      writeFileSync(live, '');
      await writeSnapshot(target, vm.contents);
      expect(readdirSync(sub).sort()).toEqual([path.basename(live), 'vm.snap']);
    });

  it('a writer killed at any moment, the last steps included, leaves the previous file or the whole new one', async () => {
    const random = prng(77);
    const outcomes = new Set<string>();
    for (let run = 0; run < 5; run++) {
      const { target, previous } = await setUp(true);
      const child = spawnWriter(target, 8);
      // 8 chunks of 10 ms each: a kill up to 150 ms after the first lands anywhere from the memory to the rename.
      const delay = run === 4 ? 1000 : Math.floor(random() * 150);
      const finished = await new Promise<boolean>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        let output = '';
        child.stdout.on('data', (d: Buffer) => {
          output += d.toString();
          timer ??= setTimeout(() => child.kill('SIGKILL'), delay);
        });
        child.on('exit', () => {
          clearTimeout(timer);
          resolve(output.includes('done'));
        });
      });
      const unchanged = sameBytes(readFileSync(target), previous!);
      if (finished) expect(unchanged).toBe(false);
      if (!unchanged) {
        const snapshot = await openSnapshot(target, { verifyMemory: true });
        expect(snapshot.manifest.vm).toEqual({ child: true });
        await snapshot.close();
      }
      outcomes.add(unchanged ? 'previous' : 'new');
    }
    // Which runs were cut short depends on timing; the last one always runs to the end.
    expect(outcomes.has('new')).toBe(true);
  });
});

// `tsvmm snapshot NAME FILE [--diff]`: save a running VM (it pauses for the save and goes on after);
// a diff holds only the pages written since the VM's previous snapshot.
// `tsvmm verify FILE`: check a snapshot file and its parents, every checksum.
// `tsvmm restore FILE`: continue a saved VM in this process, on this terminal or in the background.

import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import type { CommandBody } from './commands.js';
import { request } from '../api/control-client.js';
import { ProgressBar } from './progress.js';
import { reportError } from './output.js';
import { REBOOT_OPTION, runDetached, runVm, terminalOptions } from './run.js';
import { Vm } from '../vmm/vm.js';
import { isTsvmmError, TsvmmError } from '../errors.js';
import { formatSize } from '../boot/format.js';

/** Checks every checksum of a snapshot and its parents, guest memory included. */
export const verifyCommand: CommandBody<{ file: string }> = {
  builder: (y: Argv) => y
    .positional('file', { type: 'string', demandOption: true, describe: 'Snapshot file' }) as Argv<{ file: string }>,
  handler: async (args: ArgumentsCamelCase<{ file: string }>) => {
    process.exitCode = await verify(path.resolve(args.file));
  },
};

async function verify(file: string): Promise<number> {
  const bar = new ProgressBar(`verifying ${path.basename(file)}`);
  try {
    const { verifySnapshot } = await import('../snapshot/index.js');
    const result = await verifySnapshot(file, { onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal) });
    bar.done();
    const chain = result.files > 1 ? `, with its ${result.files - 1} parent${result.files > 2 ? 's' : ''}` : '';
    process.stdout.write(`${file}: intact: every checksum matches (${formatSize(result.memoryBytes)} of guest memory${chain})\n`);
    return 0;
  } catch (error) {
    bar.done();
    return reportError(error);
  }
}

interface SnapshotArgs {
  name: string;
  file: string;
  diff: boolean;
}

export const snapshotCommand: CommandBody<SnapshotArgs> = {
  builder: (y: Argv) => y
    .positional('name', { type: 'string', demandOption: true, describe: 'The VM, as `tsvmm ps` names it' })
    .positional('file', { type: 'string', demandOption: true, describe: 'Snapshot file to write (replaced only once complete)' })
    .option('diff', { type: 'boolean', default: false, describe: 'Save only the pages written since the VM\'s previous snapshot, which the new file needs beside it' }) as Argv<SnapshotArgs>,
  handler: async (args: ArgumentsCamelCase<SnapshotArgs>) => {
    const bar = new ProgressBar(`saving ${args.name}`);
    const started = performance.now();
    try {
      // The VM resolves the path itself, so it must be absolute.
      const file = path.resolve(args.file);
      await request(args.name, 'snapshot', { path: file, diff: args.diff, onProgress: (done, total) => bar.update(done, total) });
      bar.done();
      process.stderr.write(`tsvmm: ${args.name} saved to ${file}${args.diff ? ' (a diff)' : ''} in ${((performance.now() - started) / 1000).toFixed(2)} s\n`);
    } catch (error) {
      bar.done();
      process.exitCode = reportError(isTsvmmError(error) && error.code === 'NO_SUCH_INSTANCE' && args.name === 'verify'
        // `tsvmm snapshot verify FILE` checked a file until `tsvmm verify` took over, so that any
        // name may be a VM's; whoever still types it learns the new form.
        ? new TsvmmError(error.code, `${error.message}; to check a snapshot file, \`tsvmm verify FILE\``)
        : error);
    }
  },
};

interface RestoreArgs {
  file: string;
  name?: string;
  diskPath: string[];
  verify: boolean;
  reboot: boolean;
  detach: boolean;
  quiet: boolean;
  verbose: boolean;
  json: boolean;
}

export const restoreCommand: CommandBody<RestoreArgs> = {
  builder: (y: Argv) => terminalOptions(y)
    .positional('file', { type: 'string', demandOption: true, describe: 'Snapshot file' })
    .option('name', { type: 'string', describe: 'Name of the restored VM (default: a new one, so clones can run side by side)' })
    .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'Run in the background; `tsvmm console NAME` attaches' })
    .option('reboot', REBOOT_OPTION)
    .option('verify', { type: 'boolean', default: false, describe: 'First check every byte of guest memory in the file against its checksums (reads it all)' })
    .option('disk-path', { type: 'string', array: true, default: [], describe: 'OLD=NEW: the snapshot\'s disk OLD is now at NEW (moved or copied; repeat for more disks)' }) as unknown as Argv<RestoreArgs>,
  handler: async (args: ArgumentsCamelCase<RestoreArgs>) => {
    const file = path.resolve(args.file);
    let diskPaths: Record<string, string>;
    try {
      diskPaths = parseDiskPaths(args.diskPath);
    } catch (error) {
      process.exitCode = reportError(error);
      return;
    }
    if (args.detach) {
      const moves = Object.entries(diskPaths).flatMap(([from, to]) => ['--disk-path', `${from}=${to}`]);
      process.exitCode = await runDetached(args.name, args.quiet, ['restore', file, ...moves, ...(args.verify ? ['--verify'] : []), ...(args.reboot ? ['--reboot'] : [])]);
      return;
    }
    const name = args.name ?? `vm-${process.pid}`;
    process.exitCode = await runVm(args, () => Vm.restore(file, { name, start: false, diskPaths, verify: args.verify, mainThread: true }));
  },
};

/** `--disk-path OLD=NEW`, repeated: both made absolute here, where the user typed them. */
function parseDiskPaths(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1) throw new TsvmmError('BAD_CONFIG', `--disk-path ${value}: use OLD=NEW (the disk's path in the snapshot, then where it is now)`);
    out[path.resolve(value.slice(0, eq))] = path.resolve(value.slice(eq + 1));
  }
  return out;
}

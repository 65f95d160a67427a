// `tsvmm run`: boot a guest with its serial console on this terminal.

import { EventEmitter } from 'node:events';
import { fstatSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import type { CommandBody } from './commands.js';
import { Vm } from '../vmm/vm.js';
import { bootConfig, DEFAULT_CMDLINE } from '../vmm/config.js';
import { describeOutcome, type ShutdownReason, type VmOutcome } from '../vmm/outcome.js';
import { formatSize } from '../boot/format.js';
import { formatVcpuDump } from '../vmm/diagnostics.js';
import { ConsoleEscape, ESCAPE_HELP } from './console-escape.js';
import { errorLine, reportError } from './output.js';
import { parseDiskOption, parseNetOption } from './device-options.js';
import { backgroundLog, isDetached, reportBackgroundFailure, signalReady, startInBackground } from './detach.js';
import { ControlServer } from '../api/control-server.js';
import { vmInstance, vmRecord } from '../api/vm-instance.js';
import { checkName, listInstances } from '../api/runtime-dir.js';
import { randomName } from '../meta/random-name.js';
import { monotonicMs } from '../meta/clock.js';
import { TsvmmError } from '../errors.js';
import { numberOption } from './number-option.js';

interface RunArgs {
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  mem: string;
  cpus: number;
  disk: string[];
  net?: string;
  rng: boolean;
  console: 'serial' | 'virtio';
  virtioCmdline?: boolean;
  reboot: boolean;
  name?: string;
  detach: boolean;
  quiet: boolean;
  verbose: boolean;
  json: boolean;
}

export const runCommand: CommandBody<RunArgs> = {
  builder: (yargs: Argv) => terminalOptions(yargs)
    .option('kernel', { type: 'string', describe: 'Kernel image: a Linux bzImage, an ELF with a PVH note, or a 64-bit ELF such as vmlinux (default: the demo guest)' })
    .option('initrd', { type: 'string', describe: 'Initial ramdisk, handed to the kernel as a boot module' })
    .option('cmdline', { type: 'string', describe: `Kernel command line (default: "${DEFAULT_CMDLINE}")` })
    .option('mem', { type: 'string', default: '256M', describe: 'Guest RAM, e.g. 256M, 1G (a plain number means MiB)' })
    .option('cpus', numberOption('cpus', { default: 1, describe: 'Number of vCPUs, each on its own thread' }))
    .option('disk', { type: 'string', array: true, default: [], describe: 'A virtio-blk disk on a raw image: FILE or FILE,ro (repeat for more disks)' })
    .option('net', { type: 'string', describe: 'A virtio-net NIC on a tap device: tap=NAME[,mac=52:54:00:12:34:56]' })
    .option('rng', { type: 'boolean', default: false, describe: 'A virtio-rng device fed from the host\'s random number generator' })
    .option('console', { choices: ['serial', 'virtio'] as const, default: 'serial' as const, describe: 'Where typed input goes: the 16550 UART (ttyS0) or a virtio console (hvc0)' })
    .option('virtio-cmdline', { type: 'boolean', describe: 'Also announce virtio devices as virtio_mmio.device= on the kernel command line (they are always in the ACPI DSDT; default: for ELF kernels only, not for a bzImage)' })
    .group(['disk', 'net', 'rng', 'console', 'virtio-cmdline'], 'Devices:')
    .option('reboot', REBOOT_OPTION)
    .option('name', { type: 'string', describe: 'Name for `tsvmm ps`, `console`, `pause`, `stop` (default vm-PID)' })
    .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'Run in the background; reach the console with `tsvmm console NAME`' })
    .example('$0 run', 'boot the demo guest (type `exit` in it, or Ctrl-A X)')
    .example('$0 run --kernel guests/build/test.elf --cmdline "mode=info" --mem 512M', 'boot a kernel of your own')
    .epilog('Console keys: Ctrl-A X quits, Ctrl-A H shows help. Exit code: 0 when the guest shuts down or you quit, 1 on an error.') as Argv<RunArgs>,
  handler: async (args: ArgumentsCamelCase<RunArgs>) => {
    process.exitCode = args.detach ? await runDetached(args.name, args.quiet, runArgv(args)) : await runVm(args, async () => Vm.create({
      kernel: args.kernel, initrd: args.initrd, cmdline: args.cmdline, memory: args.mem, cpus: args.cpus,
      disks: args.disk.map(parseDiskOption), net: args.net === undefined ? undefined : parseNetOption(args.net),
      rng: args.rng, console: args.console, virtioCmdline: args.virtioCmdline, name: args.name,
    }, { mainThread: true }));
  },
};

/** How `run` and `restore` show a VM on this terminal: everything but where the VM comes from. */
export interface TerminalOptions {
  quiet: boolean;
  verbose: boolean;
  json: boolean;
}

/** The options behind TerminalOptions, for every command that shows a VM on this terminal. */
export function terminalOptions(yargs: Argv) {
  return yargs
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Print only the guest console' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Also log unassigned port and MMIO accesses' })
    .option('json', { type: 'boolean', default: false, describe: 'At exit, print a JSON summary on stderr instead of a sentence' });
}

/** `run --reboot` and `restore --reboot`. */
export const REBOOT_OPTION = {
  type: 'boolean', default: false,
  describe: 'When the guest resets (reboot, triple fault), boot its kernel again as QEMU does; by default a reset ends the VM',
} as const;

/** Guest resets that `--reboot` answers with a fresh boot (QEMU's default; without it, the VM ends). */
const RESETS: readonly ShutdownReason[] = ['i8042-reset', 'acpi-reset', 'triple-fault', 'system-reset'];

/**
 * Runs a VM that `create` builds (not yet started) with its console on this terminal. With
 * `reboot`, a guest reset boots its configuration afresh (a restored VM's too: its kernel,
 * not the snapshot again), under the same name and control socket.
 */
export async function runVm(args: TerminalOptions & { reboot?: boolean }, create: () => Promise<Vm>): Promise<number> {
  let vm: Vm;
  try {
    vm = await create();
  } catch (error) {
    return reportError(error, process.stderr, args.json);
  }
  // A stop (a signal, Ctrl-A X, the control socket) that comes between a guest reset and the
  // next boot would reach the ended VM and be lost: the reboot loop checks this too.
  let stopAsked = false;
  const stop = async () => {
    stopAsked = true;
    await vm.stop();
  };
  // Every VM's console, whichever is running now, for consoles attached through the socket.
  const output = new EventEmitter<{ output: [Buffer] }>();
  // Registered before the guest starts, so that a name already taken is refused up front.
  let control: ControlServer;
  try {
    control = await ControlServer.listen(vmRecord(vm), { ...vmInstance(() => vm, output), stop });
  } catch (error) {
    await vm.stop();
    return reportError(error, process.stderr, args.json);
  }
  // In the background (run --detach), the console is reached only through the control socket.
  const detached = isDetached();
  const status = (line: string) => { if (!args.quiet && !args.json && !detached) process.stderr.write(`${line}\r\n`); };
  // The guest's input is our stdin, unless there is nothing to read there: in the background,
  // or /dev/null (a service manager's, a script's </dev/null), for which process.stdin would
  // still make a stream (~2 ms of the start).
  const stdin = detached || stdinIsNull() ? undefined : process.stdin;
  const interactive = stdin?.isTTY === true;
  const restoreTerminal = () => {
    if (interactive && stdin.isRaw) stdin.setRawMode(false);
    stdin?.pause();
  };

  const wire = (v: Vm) => {
    v.on('output', (chunk) => output.emit('output', chunk));
    v.on('log', (message) => { if (args.verbose) process.stderr.write(`tsvmm: ${message}\r\n`); });
  };
  wire(vm);
  if (!detached) {
    output.on('output', (chunk) => process.stdout.write(chunk));
    // A reader that went away (`tsvmm run | head`) ends the VM quietly instead of crashing us.
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') void stop();
      else throw error;
    });
  }

  const escape = new ConsoleEscape();
  stdin?.on('data', (data: Buffer) => {
    if (!interactive) {
      vm.write(data);
      return;
    }
    const { forward, commands } = escape.feed(data);
    if (forward.length) vm.write(forward);
    for (const command of commands) {
      if (command === 'quit') void stop();
      else process.stderr.write(`\r\n${ESCAPE_HELP}\r\n`);
    }
  });
  stdin?.on('error', () => { /* a closed stdin just means no more input */ });
  if (interactive) stdin.setRawMode(true);
  stdin?.resume();
  // SIGHUP too (a closed terminal, kill -HUP): a normal end, as QEMU takes it, not one that leaves the socket behind.
  const onSignal = () => { void stop(); };
  for (const signal of STOP_SIGNALS) process.once(signal, onSignal);

  const what = vm.bootProtocol === 'snapshot' ? `restoring ${vm.config.name}` : `booting ${path.basename(vm.config.kernel)}`;
  status(`tsvmm: ${what} (${vm.bootProtocol}, ${formatSize(vm.config.memory)}, ${vm.config.cpus} vCPU${vm.config.cpus > 1 ? 's' : ''})${interactive ? '; Ctrl-A X quits' : ''}`);
  const started = monotonicMs();
  let outcome: VmOutcome;
  for (;;) {
    try {
      vm.start();
    } catch (error) {
      restoreTerminal();
      await control.close();
      return reportError(error, process.stderr, args.json);
    }
    // Its devices were made by create() and its vCPUs run: a start in the background may return.
    signalReady();
    outcome = await vm.wait();
    const reset = outcome.kind === 'shutdown' && RESETS.includes(outcome.reason);
    // Under --reboot a reset does not end the VM: if a stop came meanwhile, the stop did.
    if (args.reboot && reset && stopAsked) outcome = { kind: 'stopped' };
    if (stopAsked || !args.reboot || !reset) break;
    status(`\r\ntsvmm: ${describeOutcome(outcome)}; booting again (--reboot)`);
    try {
      vm = Vm.create(bootConfig(vm.config));
    } catch (error) {
      restoreTerminal();
      await control.close();
      return reportError(error, process.stderr, args.json);
    }
    wire(vm);
  }
  await control.close(describeOutcome(outcome));
  restoreTerminal();
  for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  const seconds = (monotonicMs() - started) / 1000;
  if (args.json) {
    process.stderr.write(`${JSON.stringify({ outcome, seconds, stats: vm.stats })}\n`);
  } else if (outcome.kind === 'error') {
    process.stderr.write(`\r\n${errorLine(outcome.message)}\n`);
    // The crash report below has the same registers and code, and more: one of them is enough.
    if (outcome.diagnostics && !outcome.vcpus) process.stderr.write(`${outcome.diagnostics.replace(/^/gm, '  ')}\n`);
  } else {
    status(`\r\ntsvmm: ${describeOutcome(outcome)} after ${seconds.toFixed(2)} s`);
  }
  // A crash's report (every vCPU's state) is printed even with --quiet: it is what there is to see.
  const vcpus = outcome.kind === 'stopped' ? undefined : outcome.vcpus;
  if (vcpus && !args.json) {
    process.stderr.write(`tsvmm: the vCPUs' state when the VM ended:\n`);
    process.stderr.write(`${vcpus.map(formatVcpuDump).join('\n').replace(/^/gm, '  ')}\n`);
  }
  return exitCode(outcome);
}


/** The `run` command line that reproduces `args` in a background process. */
function runArgv(args: RunArgs): string[] {
  const argv = ['run', '--mem', args.mem, '--cpus', String(args.cpus), '--console', args.console];
  if (args.kernel) argv.push('--kernel', path.resolve(args.kernel));
  if (args.initrd) argv.push('--initrd', path.resolve(args.initrd));
  if (args.cmdline !== undefined) argv.push('--cmdline', args.cmdline);
  for (const disk of args.disk) argv.push('--disk', disk);
  if (args.net) argv.push('--net', args.net);
  if (args.rng) argv.push('--rng');
  if (args.reboot) argv.push('--reboot');
  if (args.virtioCmdline !== undefined) argv.push(args.virtioCmdline ? '--virtio-cmdline' : '--no-virtio-cmdline');
  return argv;
}

/**
 * `run --detach` (and `restore --detach`): the same command again as a background process of its
 * own session, whose stderr goes to a log in the runtime directory. We wait until its vCPUs are
 * started, or until it dies, in which case its error line is ours.
 */
export async function runDetached(requestedName: string | undefined, quiet: boolean, command: string[]): Promise<number> {
  let name: string;
  let logFile: string;
  try {
    name = checkName(requestedName ?? randomName('vm'));
    if (listInstances().some((r) => r.name === name)) throw new TsvmmError('NAME_IN_USE', `an instance named "${name}" is already running`);
    logFile = backgroundLog(name);
  } catch (error) {
    return reportError(error);
  }
  const started = await startInBackground([...command, '--name', name], logFile);
  if (started.kind !== 'ready') return reportBackgroundFailure(name, started, logFile);
  process.stdout.write(`${name}\n`);
  if (!quiet) process.stderr.write(`tsvmm: ${name} is running in the background; \`tsvmm console ${name}\` attaches, \`tsvmm stop ${name}\` stops it\n`);
  return 0;
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Whether our stdin is /dev/null (or closed): nothing will ever come from it. */
function stdinIsNull(): boolean {
  try {
    const st = fstatSync(0);
    return st.isCharacterDevice() && st.rdev === statSync('/dev/null').rdev;
  } catch {
    return true;
  }
}

export function exitCode(outcome: VmOutcome): number {
  return outcome.kind === 'error' ? 1 : 0;
}

// tsvmm's commands: each one's name, arguments and summary (what `tsvmm --help` lists), and where
// its code is. This table is all the command line reads before it knows the command: only the
// command being run is loaded (yargs included), so `tsvmm ps` never pays for the VM, the
// container runtime or blessed. A new command is one line here and a module exporting its body.

import type { CommandModule } from 'yargs';

/** A command's options and handler; its name and summary are in COMMANDS. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command has its own argument type
export type CommandBody<Args = any> = Omit<CommandModule<object, Args>, 'command' | 'describe' | 'aliases'>;

export interface CommandEntry {
  /** yargs' command string: the name, then the positional arguments. */
  readonly command: string;
  readonly describe: string;
  /** Imports the command's module: the only place it is imported from. */
  readonly load: () => Promise<CommandBody>;
  /** Work begun before the module loads, given the words after the command's name. */
  readonly early?: (args: readonly string[]) => Promise<void>;
}

/**
 * `run` of a VM with several vCPUs starts their threads first: they boot on other cores while the
 * command's code loads and the VM is built (vmm/threads.ts). A single vCPU runs on the main
 * thread (vmm/main-thread-vcpu.ts), and a VM run elsewhere (--detach) or not at all needs none.
 */
async function prestartVcpus(args: readonly string[]): Promise<void> {
  if (args.some((a) => a === '--help' || a === '-h' || a === '--detach' || /^-[a-z]*d/.test(a))) return;
  const at = args.findIndex((a) => a === '--cpus' || a.startsWith('--cpus='));
  const cpus = at < 0 ? 1 : Number(args[at]!.includes('=') ? args[at]!.split('=')[1] : args[at + 1]);
  if (Number.isInteger(cpus) && cpus > 1 && cpus <= 64) (await import('../vmm/threads.js')).prestartVcpuThreads(cpus);
}

export const COMMANDS: readonly CommandEntry[] = [
  { command: 'run', describe: 'Boot a guest with its serial console on this terminal', load: async () => (await import('./run.js')).runCommand, early: prestartVcpus },
  { command: 'ps', describe: 'List running VMs and containers', load: async () => (await import('./instances.js')).psCommand },
  { command: 'console <name>', describe: 'Attach this terminal to the console of a VM or container started with --detach (Ctrl-A X detaches)', load: async () => (await import('./console.js')).consoleCommand },
  { command: 'pause <name>', describe: 'Pause a running VM (all vCPUs) or container (freezer)', load: async () => (await import('./instances.js')).pauseCommand },
  { command: 'resume <name>', describe: 'Resume a paused VM or container', load: async () => (await import('./instances.js')).resumeCommand },
  { command: 'stop <name>', describe: 'Stop a VM or container', load: async () => (await import('./instances.js')).stopCommand },
  { command: 'container <command>', describe: 'Containers: the same workloads on the host kernel (namespaces, cgroups, overlayfs)', load: async () => (await import('./container.js')).containerCommand },
  { command: 'update <name>', describe: 'Change a running container\'s memory, CPU and process limits in place', load: async () => (await import('./update.js')).updateCommand },
  { command: 'snapshot <name> <file>', describe: 'Save a running VM to a file (written atomically; the VM pauses for the save)', load: async () => (await import('./snapshot.js')).snapshotCommand },
  { command: 'verify <file>', describe: 'Check a snapshot file and its parents: every checksum, guest memory included', load: async () => (await import('./snapshot.js')).verifyCommand },
  { command: 'restore <file>', describe: 'Continue a VM saved by `tsvmm snapshot`, here or in the background (--detach)', load: async () => (await import('./snapshot.js')).restoreCommand },
  { command: 'compare', describe: 'Measure the same workloads natively, in a container and in a VM, side by side', load: async () => (await import('./compare.js')).compareCommand },
  { command: 'dashboard', describe: 'A terminal dashboard: watch, boot, snapshot and stop VMs and containers (? shows the keys)', load: async () => (await import('./dashboard.js')).dashboardCommand },
];

/** The entry whose name is `word`, if any. */
export function findCommand(word: string | undefined): CommandEntry | undefined {
  return word === undefined ? undefined : COMMANDS.find((c) => c.command.split(' ', 1)[0] === word);
}

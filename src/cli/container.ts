// `tsvmm container run`: a workload in a container on the host kernel (namespaces, cgroups,
// pivot_root into its own root filesystem), from an OCI bundle or from a root directory and
// flags. Its output and exit status are passed through; while it runs, `tsvmm ps`, `pause`,
// `resume`, `stop`, `update` and (with --detach) `console` reach it by name, as they reach VMs.

import { isatty } from 'node:tty';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { CommandBody } from './commands.js';
import { ControlServer, type NameClaim } from '../api/control-server.js';
import { checkName, listInstances } from '../api/runtime-dir.js';
import { monotonicMs } from '../meta/clock.js';
import { randomName } from '../meta/random-name.js';
import type { Container, ContainerOutcome } from '../container/container.js';
import { ContainerError } from '../container/errors.js';
import type { ContainerConfig } from '../container/config.js';
import type { TerminalSize } from '../api/protocol.js';
import { ConsoleEscape, type EscapeResult } from './console-escape.js';
import { errorLine, reportError } from './output.js';
import { numberOption } from './number-option.js';
import { backgroundLog, isDetached, reportBackgroundFailure, signalReady, startInBackground } from './detach.js';

interface ContainerRunArgs {
  bundle?: string;
  rootfs?: string;
  layer: string[];
  mem?: string;
  cpus?: number;
  pids?: number;
  tty?: boolean;
  hostname?: string;
  net: 'veth' | 'none';
  env: string[];
  cwd?: string;
  readOnly: boolean;
  keep: boolean;
  name?: string;
  detach: boolean;
  stopTimeout: number;
  json: boolean;
  command?: string[];
}


const runCommand: CommandModule<object, ContainerRunArgs> = {
  command: 'run [command..]',
  describe: 'Run a command in a container: tsvmm container run --rootfs DIR -- CMD [ARGS...]',
  builder: (yargs: Argv) => yargs
    .positional('command', { type: 'string', array: true, describe: 'What to run, after `--` (with --bundle: replaces process.args)' })
    .option('bundle', { type: 'string', describe: 'An OCI runtime bundle: a directory with config.json and its root filesystem (as `runc spec` makes it)' })
    .option('rootfs', { type: 'string', describe: 'A directory to use as the root filesystem' })
    .option('layer', { type: 'string', array: true, default: [], describe: 'A read-only layer stacked over the root with overlayfs (repeat; later ones on top); writes go to a layer of the container\'s own' })
    .option('keep', { type: 'boolean', default: false, describe: 'With --layer: keep the container\'s writable layer after it ends (its path is printed)' })
    .option('read-only', { type: 'boolean', default: false, describe: 'Mount the root filesystem read-only' })
    .group(['bundle', 'rootfs', 'layer', 'keep', 'read-only'], 'Root filesystem:')
    .option('mem', { type: 'string', describe: 'Memory limit, e.g. 64M, 1G (past it, the OOM killer ends the biggest process)' })
    .option('cpus', numberOption('cpus', { integer: false, describe: 'CPU bandwidth in CPUs, e.g. 0.5 or 2' }))
    .option('pids', numberOption('pids', { describe: 'Most processes at once (a fork bomb stops here)' }))
    .group(['mem', 'cpus', 'pids'], 'Limits (change them later with `tsvmm update`):')
    .option('hostname', { type: 'string', describe: 'Host name inside the container (default: its name)' })
    .option('net', { choices: ['veth', 'none'] as const, default: 'none' as const, describe: 'veth: an interface on the bridge tsvmm0 (10.88.0.0/16); none: loopback only' })
    .option('env', { alias: 'e', type: 'string', array: true, default: [], describe: 'NAME=value added to the environment (repeat)' })
    .option('cwd', { type: 'string', describe: 'Working directory inside the container' })
    .option('name', { type: 'string', describe: 'Name for `tsvmm ps`, `pause`, `stop`, `update`, `console` (default ctr-XXXXXX)' })
    .option('tty', { alias: 't', type: 'boolean', describe: 'Give the container a pty of its own (default: when stdin is a terminal, or a bundle\'s process.terminal asks); --no-tty: pipes' })
    .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'Run in the background; reach its stdio with `tsvmm console NAME`' })
    .option('stop-timeout', numberOption('stop-timeout', { min: 0, default: 10, describe: 'Seconds `tsvmm stop` waits after SIGTERM before SIGKILL' }))
    .option('json', { type: 'boolean', default: false, describe: 'At exit, print a JSON summary on stderr' })
    .example('$0 container run --rootfs rootfs --mem 64M --pids 100 -- sh -c "echo hi"', 'a limited container')
    .example('$0 container run --bundle .cache/busybox-bundle -- ps', 'a bundle, with another command')
    .example('$0 container run --rootfs base --layer app --net veth --name web --detach -- httpd -f', 'layers, a network, in the background')
    .epilog('Exit code: the command\'s (128+N if signal N ended it, 137 for the OOM killer, 127 if it was not found); 1 for an error before it ran.') as unknown as Argv<ContainerRunArgs>,
  handler: async (args: ArgumentsCamelCase<ContainerRunArgs>) => {
    process.exitCode = args.detach ? await runDetached(args) : await runContainer(args);
  },
};

export const containerCommand: CommandBody = {
  builder: (yargs: Argv) => yargs.command(runCommand).demandCommand(1, 'Say which container command to run (try `tsvmm container run --help`).'),
  handler: () => {},
};

/** What follows `--`, word for word (yargs would turn "010" into 10). */
function commandWords(args: ContainerRunArgs): string[] {
  const dashes = process.argv.indexOf('--');
  if (dashes >= 0) return process.argv.slice(dashes + 1);
  return (args.command ?? []).map(String);
}

async function toConfig(args: ContainerRunArgs, detached: boolean): Promise<ContainerConfig> {
  const env: Record<string, string> = {};
  for (const entry of args.env) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new ContainerError('BAD_CONFIG', `--env ${entry}: use NAME=value`);
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  if (!Number.isFinite(args.stopTimeout) || args.stopTimeout < 0) throw new ContainerError('BAD_CONFIG', `--stop-timeout ${args.stopTimeout}: must be 0 or more seconds`);
  const command = commandWords(args);
  // A pty of our terminal's size; of the bundle's consoleSize (or 24×80) when we show none.
  const terminal = await wantsTerminal(args, detached) ? (detached ? true : terminalSize() ?? true) : false;
  return {
    bundle: args.bundle, rootfs: args.rootfs, layers: args.layer, command: command.length ? command : undefined,
    env, cwd: args.cwd, hostname: args.hostname, memory: args.mem, cpus: args.cpus, pids: args.pids, net: args.net,
    name: args.name, readOnly: args.readOnly, keepUpper: args.keep,
    stdio: detached || terminal ? 'pipe' : 'inherit', terminal, stopTimeoutMs: args.stopTimeout * 1000,
  };
}

/**
 * Whether the container gets a pty: --tty / --no-tty; else when our stdin is a terminal (in the
 * foreground), or when the bundle's process.terminal asks for one, as runc gives it.
 */
async function wantsTerminal(args: ContainerRunArgs, detached: boolean): Promise<boolean> {
  if (args.tty !== undefined) return args.tty;
  // isatty, not process.stdin.isTTY: that getter makes the stdin stream (~2 ms), which only a
  // terminal's relay uses.
  if (!detached && isatty(0)) return true;
  return args.bundle !== undefined && (await import('../container/config.js')).bundleAsksForTerminal(args.bundle);
}

/** The size of the terminal we show the container's pty on; undefined when we show it on none. */
function terminalSize(): TerminalSize | undefined {
  const out = [process.stdout, process.stderr].find((s) => s.isTTY);
  return out && { rows: out.rows || 24, cols: out.columns || 80 };
}

async function runContainer(args: ContainerRunArgs): Promise<number> {
  const detached = isDetached();
  // Loaded here, so that the VM commands do not pay for the container runtime's modules.
  const { Container, describeContainerOutcome, exitStatus } = await import('../container/container.js');
  const { containerInstance, containerRecord } = await import('../container/instance.js');
  let container: Container;
  try {
    container = Container.create(await toConfig(args, detached));
  } catch (error) {
    return reportError(error);
  }
  const record = containerRecord(container);
  // The name is taken before it starts, so that one already taken is refused up front; its
  // control socket and record are made while the helper sets the container up (they take a few
  // ms; the helper, cloning into namespaces and joining cgroups, as long or longer).
  let claim: NameClaim;
  try {
    claim = await ControlServer.claim(container.name);
  } catch (error) {
    return reportError(error);
  }
  // The first Ctrl-C, SIGTERM or hang-up stops it politely (SIGTERM, then SIGKILL after
  // --stop-timeout); a second one does not wait. Either way we live to remove its cgroups.
  // With a terminal, Ctrl-C is the container's (its pty makes it SIGINT) and Ctrl-A X stops it.
  let signals = 0;
  const onSignal = () => { void container.stop(signals++ === 0 ? undefined : 0); };
  const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of stopSignals) process.on(signal, onSignal);
  const started = monotonicMs();
  let unrelay = () => {};
  try {
    container.start();
  } catch (error) {
    for (const signal of stopSignals) process.off(signal, onSignal);
    claim.release();
    return reportError(error);
  }
  // Should we be killed (SIGKILL), the next tsvmm command that lists instances removes these.
  record.leftovers = container.leftovers;
  let control: ControlServer;
  try {
    control = await claim.serve(record, containerInstance(container, record));
  } catch (error) {
    await container.stop(0);
    for (const signal of stopSignals) process.off(signal, onSignal);
    return reportError(error);
  }
  if (container.config.terminal && !detached) unrelay = relayTerminal(container, onSignal);
  // In the background, the start that waits returns once the network is up and the command
  // runs; a container that ends before that reports why (below), and that is what it reads.
  void container.ready().then(signalReady, () => {});
  const outcome = await container.wait();
  unrelay();
  await control.close(describeContainerOutcome(outcome));
  for (const signal of stopSignals) process.off(signal, onSignal);
  await report(container, outcome, args, (monotonicMs() - started) / 1000);
  return exitStatus(outcome);
}

/**
 * The container's pty on our terminal: ours in raw mode, so that every key (Ctrl-C included)
 * reaches the container's line discipline; its output to ours; our size changes to it.
 * Ctrl-A X stops it (`onQuit`). Returns the function that gives the terminal back.
 */
function relayTerminal(container: Container, onQuit: () => void): () => void {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  const restore = () => { if (raw && stdin.isRaw) stdin.setRawMode(false); };
  if (raw) stdin.setRawMode(true);
  process.on('exit', restore);
  const escape = new ConsoleEscape();
  const onInput = (data: Buffer) => {
    const { forward, commands }: EscapeResult = raw ? escape.feed(data) : { forward: data, commands: [] };
    if (forward.length) container.write(forward);
    if (commands.includes('quit')) onQuit();
    if (commands.includes('help')) process.stderr.write('\r\ntsvmm: Ctrl-A X stops the container; Ctrl-A Ctrl-A types Ctrl-A\r\n');
  };
  const onEnd = () => container.endInput();
  const onOutput = (chunk: Buffer) => process.stdout.write(chunk);
  const outputs = [process.stdout, process.stderr].filter((s) => s.isTTY);
  const onResize = () => container.resize(terminalSize()!);
  stdin.on('data', onInput).once('end', onEnd).resume();
  container.on('output', onOutput);
  for (const s of outputs) s.on('resize', onResize);
  return () => {
    stdin.off('data', onInput).off('end', onEnd).pause();
    container.off('output', onOutput);
    for (const s of outputs) s.off('resize', onResize);
    restore();
    process.off('exit', restore);
  };
}

async function report(container: Container, outcome: ContainerOutcome, args: ContainerRunArgs, seconds: number): Promise<void> {
  const { describeContainerOutcome, exitStatus } = await import('../container/container.js');
  if (args.json) {
    process.stderr.write(`${JSON.stringify({ name: container.name, outcome, exitStatus: exitStatus(outcome), seconds, cpuTimeUs: container.cpuTimeUs })}\n`);
    return;
  }
  if (outcome.kind === 'error') process.stderr.write(`${errorLine(outcome.message)}\n`);
  else if (outcome.kind === 'oom' || (outcome.kind === 'exited' && outcome.oomKills > 0)) process.stderr.write(`tsvmm: ${container.name} ${describeContainerOutcome(outcome)}\n`);
  if (args.keep && container.upperDir) process.stderr.write(`tsvmm: kept the writable layer of ${container.name} at ${container.upperDir}\n`);
}

/**
 * --detach: the same command again as a background process of its own session, whose stderr
 * goes to a log in the runtime directory; the container's stdio is then its console. We wait
 * until it runs with its network set up, or until it dies, in which case its error line is ours.
 */
async function runDetached(args: ContainerRunArgs): Promise<number> {
  let name: string;
  let logFile: string;
  try {
    await toConfig(args, true); // the flags' own errors, before anything starts
    name = checkName(args.name ?? randomName('ctr'));
    if (listInstances().some((r) => r.name === name)) throw new ContainerError('BAD_CONFIG', `an instance named "${name}" is already running`);
    logFile = backgroundLog(name);
  } catch (error) {
    return reportError(error);
  }
  const argv = process.argv.slice(2);
  const dashes = argv.indexOf('--');
  const flags = (dashes < 0 ? argv : argv.slice(0, dashes)).filter((a) => !/^(-d|--detach(=true)?)$/.test(a));
  const rest = dashes < 0 ? [] : argv.slice(dashes);
  if (args.name === undefined) flags.push('--name', name);
  // The background process has no terminal of ours: whether ours is one is decided here (the bundle
  // it reads again).
  if (args.tty === undefined && isatty(0)) flags.push('--tty');
  const started = await startInBackground([...flags, ...rest], logFile);
  if (started.kind !== 'ready') return reportBackgroundFailure(name, started, logFile);
  process.stdout.write(`${name}\n`);
  return 0;
}

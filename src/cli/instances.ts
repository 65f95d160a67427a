// `tsvmm ps`, `pause`, `resume` and `stop`: the lifecycle of running VMs (and containers) by name.

import { existsSync, writeSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import type { CommandBody } from './commands.js';
import { containerStateRoot, listInstances } from '../api/runtime-dir.js';
import type { RuntimeContainer } from '../container/instance.js';
import type { InstanceStatus } from '../api/protocol.js';
// The dashboard's cell formats, so that ps and the dashboard show an instance alike.
import { formatMemory, formatUptime } from '../tui/format.js';
import { reportError } from './output.js';
import { numberOption } from './number-option.js';

export const psCommand: CommandBody<{ json: boolean }> = {
  builder: (y: Argv) => y.option('json', { type: 'boolean', default: false, describe: 'Print JSON for scripts' }) as Argv<{ json: boolean }>,
  handler: async (args: ArgumentsCamelCase<{ json: boolean }>) => {
    const records = listInstances();
    // Containers' states come from the runtime's state (as `tsvmm-runc list` reads them); there
    // too are the library's containers, which no supervisor announces here.
    const containers = records.some((r) => r.kind === 'container') || existsSync(containerStateRoot())
      ? await import('../container/instance.js').then((m) => m.runtimeContainers()).catch(() => new Map<string, RuntimeContainer>())
      : new Map<string, RuntimeContainer>();
    const announced = new Set(records.map((r) => r.name));
    for (const [name, c] of containers) if (!announced.has(name) && c.state !== 'exited') records.push(c.record);
    // The control socket's client (node:net) only for instances to ask (so also in the commands below).
    const { status } = records.length > 0 ? await import('../api/control-client.js') : { status: undefined };
    const rows = await Promise.all(records.map(async (record) => {
      const live = record.pid ? await status!(record.name, 1000).catch(() => undefined) : undefined;
      const runtime = record.kind === 'container' ? containers.get(record.name) : undefined;
      // PID: a VM's VMM process; a container's init (its pid 1), beside the process supervising it.
      const { leftovers: _leftovers, ...shown } = record; // the reaper's business, not the user's
      return {
        ...shown, pid: live?.pid ?? (runtime?.pid || record.pid), supervisorPid: record.pid || undefined, address: live?.address,
        // A stop asked of the supervisor shows until the runtime sees the init gone.
        state: (live?.state === 'stopping' && runtime?.state !== 'exited' ? live.state : runtime?.state) ?? live?.state ?? 'unresponsive',
        uptimeMs: live?.uptimeMs ?? Date.now() - record.startedAt, exits: live?.exits, cpuTimeUs: live?.cpuTimeUs,
        guest: live?.guest,
        // Memory used on the host (as the dashboard's MEMORY), apart from `memory`, what it may use;
        // a container's limits in force (memory null: no limit, `memory` is then the host's).
        memoryUsed: live?.memoryUsed ?? null, limits: live?.limits,
      };
    }));
    // Straight to the fd, as `tsvmm --help` does (cli/fast.ts): process.stdout would first set up
    // a stream, and for a pipe node:net.
    const print = (text: string) => writeSync(1, text);
    if (args.json) {
      print(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    if (rows.length === 0) {
      print('No VMs or containers are running. Start one with `tsvmm run --name NAME --detach`.\n');
      return;
    }
    // MEMORY: used ('-' when it cannot be read); LIMIT: what it may use ('none': a container without one).
    const table = [['NAME', 'KIND', 'STATE', 'CPUS', 'MEMORY', 'LIMIT', 'UPTIME', 'EXITS', 'PID', 'ADDRESS'],
      ...rows.map((r) => [r.name, r.kind, r.state, String(r.cpus), r.memoryUsed ? formatMemory(r.memoryUsed.bytes) : '-',
        r.limits?.memory === null ? 'none' : formatMemory(r.memory), formatUptime(r.uptimeMs), r.exits === undefined ? '-' : String(r.exits), String(r.pid), r.address ?? '-'])];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    print(table.map((row) => `${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`).join(''));
  },
};

/**
 * No supervisor announced `name`: it may be a container the library runs in another process,
 * which the runtime's state knows; then the runtime's operations reach it. Else `error` stands.
 */
async function viaRuntime(name: string, op: 'pause' | 'resume' | 'stop', error: unknown, stopTimeoutMs?: number): Promise<string> {
  if ((error as { code?: string }).code !== 'NO_SUCH_INSTANCE' || !existsSync(containerStateRoot())) throw error;
  const { runtimeOperation } = await import('../container/instance.js');
  const state = await runtimeOperation(name, op, stopTimeoutMs);
  if (state === undefined) throw error;
  return state;
}

function lifecycleCommand(op: 'pause' | 'resume'): CommandBody<{ name: string }> {
  return {
    builder: (y: Argv) => y.positional('name', { type: 'string', demandOption: true, describe: 'The VM or container, as `tsvmm ps` names it' }) as Argv<{ name: string }>,
    handler: async (args: ArgumentsCamelCase<{ name: string }>) => {
      try {
        const { request } = await import('../api/control-client.js');
        const result = await request<InstanceStatus | { stopping: true }>(args.name, op, { timeoutMs: 30_000 }).catch((error: unknown) => viaRuntime(args.name, op, error));
        const state = typeof result === 'string' ? result : 'state' in (result as object) ? (result as InstanceStatus).state : 'stopping';
        process.stdout.write(`${args.name}: ${state}\n`);
      } catch (error) {
        process.exitCode = reportError(error);
      }
    },
  };
}

export const pauseCommand = lifecycleCommand('pause');
export const resumeCommand = lifecycleCommand('resume');
interface StopArgs {
  name: string;
  timeout?: number;
}

/** `tsvmm stop NAME [--timeout S]`: stop requests compose; the one that ends soonest wins. */
export const stopCommand: CommandBody<StopArgs> = {
  builder: (y: Argv) => y
    .positional('name', { type: 'string', demandOption: true, describe: 'The VM or container, as `tsvmm ps` names it' })
    .option('timeout', numberOption('timeout', { min: 0, describe: 'Containers: seconds from SIGTERM to SIGKILL (default: its --stop-timeout); 0 kills at once' })) as unknown as Argv<StopArgs>,
  handler: async (args: ArgumentsCamelCase<StopArgs>) => {
    try {
      const timeoutMs = args.timeout === undefined ? undefined : args.timeout * 1000;
      const { request } = await import('../api/control-client.js');
      await request(args.name, 'stop', { timeoutMs: 30_000, stopTimeoutMs: timeoutMs }).catch((error: unknown) => viaRuntime(args.name, 'stop', error, timeoutMs));
      process.stdout.write(`${args.name}: stopping\n`);
    } catch (error) {
      process.exitCode = reportError(error);
    }
  },
};

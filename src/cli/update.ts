// `tsvmm update NAME --mem SIZE --cpus N --pids N`: changes a running container's limits in
// place, as `docker update` does, through its control socket; prints the limits now in force.

import type { ArgumentsCamelCase, Argv } from 'yargs';
import type { CommandBody } from './commands.js';
import { request } from '../api/control-client.js';
import type { InstanceStatus, LimitChanges } from '../api/protocol.js';
import { formatSize } from '../boot/format.js';
import { TsvmmError } from '../errors.js';
import { reportError } from './output.js';
import { numberOption } from './number-option.js';

interface UpdateArgs {
  name: string;
  mem?: string;
  cpus?: number;
  pids?: number;
}

export function describeLimits(limits: NonNullable<InstanceStatus['limits']>): string {
  return [
    `memory ${limits.memory === null ? 'unlimited' : formatSize(limits.memory)}`,
    `cpus ${limits.cpus === null ? 'unlimited' : Number(limits.cpus.toFixed(3))}`,
    `pids ${limits.pids === null ? 'unlimited' : limits.pids}`,
  ].join(', ');
}

export const updateCommand: CommandBody<UpdateArgs> = {
  builder: (y: Argv) => y
    .positional('name', { type: 'string', demandOption: true, describe: 'The container, as `tsvmm ps` names it' })
    .option('mem', { type: 'string', describe: 'New memory limit, e.g. 128M, 1G' })
    .option('cpus', numberOption('cpus', { integer: false, describe: 'New CPU bandwidth in CPUs, e.g. 0.5' }))
    .option('pids', numberOption('pids', { describe: 'New process limit' }))
    .example('$0 update web --mem 256M --cpus 1.5', 'give the container "web" more room') as unknown as Argv<UpdateArgs>,
  handler: async (args: ArgumentsCamelCase<UpdateArgs>) => {
    try {
      const limits: LimitChanges = { memory: args.mem, cpus: args.cpus, pids: args.pids };
      if (args.mem === undefined && args.cpus === undefined && args.pids === undefined) {
        throw new TsvmmError('BAD_CONFIG', 'say what to change: --mem SIZE, --cpus N and/or --pids N');
      }
      const status = await request<InstanceStatus>(args.name, 'update', { limits, timeoutMs: 30_000 });
      process.stdout.write(`${args.name}: ${status.limits ? describeLimits(status.limits) : status.state}\n`);
    } catch (error) {
      process.exitCode = reportError(error);
    }
  },
};

// The `tsvmm` command line: one module per command.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runCommand } from './run.js';
import { pauseCommand, psCommand, resumeCommand, stopCommand } from './instances.js';
import { consoleCommand } from './console.js';
import { containerCommand } from './container.js';
import { updateCommand } from './update.js';
import { restoreCommand, snapshotCommand } from './snapshot.js';
import { compareCommand } from './compare.js';
import { dashboardCommand } from './dashboard.js';

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  await yargs(argv)
    .scriptName('tsvmm')
    .usage('$0 <command> [options]\n\nA KVM hypervisor written in TypeScript.')
    .command(runCommand)
    .command(psCommand)
    .command(consoleCommand)
    .command(pauseCommand)
    .command(resumeCommand)
    .command(stopCommand)
    .command(containerCommand)
    .command(updateCommand)
    .command(snapshotCommand)
    .command(restoreCommand)
    .command(compareCommand)
    .command(dashboardCommand)
    .demandCommand(1, 'Say which command to run (try `tsvmm run`).')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, error, y) => {
      // yargs reports its own usage errors, and re-throws an option's coerce error (number-option.ts)
      // as a YError with the same message: both are the user's, one line each. Anything else is ours.
      if (error && error.name !== 'YError') throw error;
      if (error) {
        process.stderr.write(`tsvmm: error: ${error.message}\n`);
        process.exit(1);
      }
      process.stderr.write(`${y.help() && ''}tsvmm: error: ${message}\nRun \`tsvmm --help\` for usage.\n`);
      process.exit(1);
    })
    .parseAsync();
}

// The `tsvmm` command line. It looks at the first word before loading anything: `--version`
// needs nothing, a command needs its own module and yargs (which parses its options and prints
// its --help), and only `--help` or an unknown word registers every command (by name and summary
// alone, from the table in commands.ts) to print the list or suggest the nearest name.

import type { Argv } from 'yargs';
import { COMMANDS, findCommand } from './commands.js';
import { packageVersion } from '../meta/package.js';

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const [first] = argv;
  if (first === '--version' && argv.length === 1) {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  const entry = findCommand(first);
  const [{ default: yargs }, body] = await Promise.all([import('yargs'), entry?.load()]);
  const y: Argv = yargs(argv)
    .scriptName('tsvmm')
    .usage('$0 <command> [options]\n\nA KVM hypervisor written in TypeScript.');
  if (entry && body) y.command({ command: entry.command, describe: entry.describe, ...body });
  else for (const c of COMMANDS) y.command(c.command, c.describe);
  await y
    .demandCommand(1, 'Say which command to run (try `tsvmm run`).')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, error) => {
      // yargs reports its own usage errors, and re-throws an option's coerce error (number-option.ts)
      // as a YError with the same message: both are the user's, one line each. Anything else is ours.
      if (error && error.name !== 'YError') throw error;
      if (error) {
        process.stderr.write(`tsvmm: error: ${error.message}\n`);
        process.exit(1);
      }
      process.stderr.write(`tsvmm: error: ${message}\nRun \`tsvmm --help\` for usage.\n`);
      process.exit(1);
    })
    .parseAsync();
}

export { reportError } from './output.js';

// The `tsvmm` command line. It looks at the first word before loading anything: `--version` and
// `--help` need only the table of commands (fast.ts, which bin/tsvmm.js calls first), a command
// needs its own module, and yargs' parser when yargs would take its words as they are
// (quick-parse.ts), yargs itself for anything else (its --help, its errors); only a word that is
// no command registers them all with yargs, by name and summary, for its error and
// nearest-name suggestion. What only some paths need comes in with a dynamic import.

import type { Argv } from 'yargs';
import { COMMANDS, findCommand } from './commands.js';
import { answerAtOnce, terminalWidth } from './fast.js';
import { packageVersion } from '../meta/package.js';
import { startupMark } from '../meta/startup-trace.js';

/** bin/tsvmm.js: runs the command line and sets the exit code. */
export async function cli(): Promise<void> {
  startupMark('bundle');
  try {
    await main();
  } catch (error) {
    process.exitCode = (await import('./output.js')).reportError(error);
  }
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const answer = answerAtOnce(argv);
  if (answer !== false) {
    await answer;
    return;
  }
  const [first] = argv;
  if (first === undefined) {
    process.stderr.write(`${(await import('./output.js')).errorLine(SAY_WHICH)}\nRun \`tsvmm --help\` for usage.\n`);
    process.exitCode = 1;
    return;
  }
  const entry = findCommand(first);
  await entry?.early?.(argv.slice(1));
  const [body, quick] = entry ? await Promise.all([entry.load(), import('./quick-parse.js')]) : [];
  // A command line yargs would take as it is runs without loading yargs (quick-parse.ts).
  if (entry && body && quick && await quick.quickRun([first], entry.command, body, argv.slice(1))) return;
  const { default: yargs } = await import('yargs');
  const y: Argv = yargs(argv)
    .scriptName('tsvmm')
    .usage('$0 <command> [options]\n\nA KVM hypervisor written in TypeScript.');
  if (entry && body) y.command({ command: entry.command, describe: entry.describe, ...body });
  else for (const c of COMMANDS) y.command(c.command, c.describe);
  await y
    .demandCommand(1, SAY_WHICH)
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .wrap(terminalWidth())
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

const SAY_WHICH = 'Say which command to run (try `tsvmm run`).';

// The `tsvmm` command line. It looks at the first word before loading anything: `--version` and
// `--help` need only the table of commands (commands.ts), a command needs its own module, and
// yargs' parser when yargs would take its words as they are (quick-parse.ts), yargs itself for
// anything else (its --help, its errors); only a word that is no command registers them all with
// yargs, by name and summary, for its error and nearest-name suggestion.
// This module imports nothing else statically but wrap.ts (import-free), so that the bundle's
// entry (scripts/bundle.mjs) is one file: what only some paths need comes in with a dynamic import.

import { fstatSync, writeSync } from 'node:fs';
import type { Argv } from 'yargs';
import { COMMANDS, findCommand } from './commands.js';
import { wrapWords } from './wrap.js';

/** bin/tsvmm.js: runs the command line and sets the exit code. */
export async function cli(): Promise<void> {
  try {
    await main();
  } catch (error) {
    process.exitCode = (await import('./output.js')).reportError(error);
  }
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const [first] = argv;
  if (argv.length <= 1 && (first === '--version' || first === '--help' || first === '-h')) {
    // Straight to the fd: process.stdout would first set up a stream and the modules behind it.
    writeSync(1, first === '--version' ? `${await packageVersion()}\n` : topLevelHelp(terminalWidth()));
    return;
  }
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
    .version(await packageVersion())
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

async function packageVersion(): Promise<string> {
  return (await import('../meta/package.js')).packageVersion();
}

/** Help's width: the terminal's, at most 100; 100 when not a terminal (as yargs does). */
function terminalWidth(): number {
  // Only a character device can be a terminal; asking process.stdout for a pipe would set it up.
  const columns = fstatSync(1).isCharacterDevice() ? process.stdout.columns : undefined;
  return Math.min(100, columns || 100);
}

const SAY_WHICH = 'Say which command to run (try `tsvmm run`).';

/** What `tsvmm --help` prints: the commands and their summaries, wrapped at word boundaries. */
export function topLevelHelp(width: number): string {
  const rows: [string, string][] = COMMANDS.map((c) => [`tsvmm ${c.command}`, c.describe]);
  const options: [string, string][] = [['-h, --help', 'Show help'], ['    --version', 'Show version number']];
  const section = (title: string, list: [string, string][]): string => {
    const left = Math.max(...list.map(([l]) => l.length)) + 4;
    return `${title}:\n${list.map(([l, d]) => `  ${l.padEnd(left - 2)}${wrapWords(d, Math.max(20, width - left)).join(`\n${' '.repeat(left)}`)}`).join('\n')}\n`;
  };
  return `tsvmm <command> [options]\n\nA KVM hypervisor written in TypeScript.\n\n${section('Commands', rows)}\n${section('Options', options)}\n`
    + 'Run `tsvmm COMMAND --help` for what a command takes.\n';
}


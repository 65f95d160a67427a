// The `tsvmm` command line. It looks at the first word before loading anything: `--version` and
// `--help` need only the table of commands (commands.ts), a command needs its own module and
// yargs (which parses its options and prints its --help), and only a word that is no command
// registers them all with yargs, by name and summary, for its error and nearest-name suggestion.

import type { Argv } from 'yargs';
import { COMMANDS, findCommand } from './commands.js';
import { packageVersion } from '../meta/package.js';
import { errorLine } from './output.js';

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const [first] = argv;
  if (argv.length <= 1 && (first === '--version' || first === '--help' || first === '-h')) {
    process.stdout.write(first === '--version' ? `${packageVersion()}\n` : topLevelHelp(Math.min(100, process.stdout.columns || 100)));
    return;
  }
  if (first === undefined) {
    process.stderr.write(`${errorLine(SAY_WHICH)}\nRun \`tsvmm --help\` for usage.\n`);
    process.exitCode = 1;
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
    .demandCommand(1, SAY_WHICH)
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

const SAY_WHICH = 'Say which command to run (try `tsvmm run`).';

/** What `tsvmm --help` prints: the commands and their summaries, wrapped at word boundaries. */
export function topLevelHelp(width: number): string {
  const rows: [string, string][] = COMMANDS.map((c) => [`tsvmm ${c.command}`, c.describe]);
  const options: [string, string][] = [['-h, --help', 'Show help'], ['    --version', 'Show version number']];
  const section = (title: string, list: [string, string][]): string => {
    const left = Math.max(...list.map(([l]) => l.length)) + 4;
    return `${title}:\n${list.map(([l, d]) => `  ${l.padEnd(left - 2)}${wrap(d, Math.max(20, width - left)).join(`\n${' '.repeat(left)}`)}`).join('\n')}\n`;
  };
  return `tsvmm <command> [options]\n\nA KVM hypervisor written in TypeScript.\n\n${section('Commands', rows)}\n${section('Options', options)}\n`
    + 'Run `tsvmm COMMAND --help` for what a command takes.\n';
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line];
}

export { reportError } from './output.js';

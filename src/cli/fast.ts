// The answers of the command line that need no yargs and no ES modules: `tsvmm --version`,
// `tsvmm --help` and `tsvmm ps`. bin/tsvmm.js is CommonJS and takes them from this module's CommonJS bundle
// (dist/bundle/cli-fast.cjs, scripts/bundle.mjs) before anything else loads: Node's ES module
// loader alone costs about a sixth of Node's own start-up in CPU time and 3 MiB, more than the
// answer. Everything else goes on to main.ts, which answers the same way when called directly.

import { fstatSync, writeSync } from 'node:fs';
import { COMMANDS } from './commands.js';
import { packageVersion } from '../meta/package.js';
import { wrapWords } from './wrap.js';

/**
 * Answers `argv` (the words after `tsvmm`) if it asks for the version, the help, or `ps` as it
 * is most often typed (`ps`, `ps --json`: its own module comes in then); else false.
 */
export function answerAtOnce(argv: readonly string[]): boolean | Promise<void> {
  const [first, ...rest] = argv;
  if (first === 'ps' && (rest.length === 0 || (rest.length === 1 && rest[0] === '--json'))) {
    return import('./instances.js').then((m) => m.psCommand.handler({ json: rest.length === 1, _: ['ps'], $0: 'tsvmm' }))
      .catch(async (error: unknown) => { process.exitCode = (await import('./output.js')).reportError(error); });
  }
  if (argv.length !== 1 || (first !== '--version' && first !== '--help' && first !== '-h')) return false;
  // Straight to the fd: process.stdout would first set up a stream and the modules behind it.
  writeSync(1, first === '--version' ? `${packageVersion()}\n` : topLevelHelp(terminalWidth()));
  return true;
}

/** Help's width: the terminal's, at most 100; 100 when not a terminal (as yargs does). */
export function terminalWidth(): number {
  // Only a character device can be a terminal; asking process.stdout for a pipe would set it up.
  const columns = fstatSync(1).isCharacterDevice() ? process.stdout.columns : undefined;
  return Math.min(100, columns || 100);
}

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

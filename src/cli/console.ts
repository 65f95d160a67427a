// `tsvmm console NAME`: this terminal becomes the console of a VM or container running in the background.
// Ctrl-A X detaches (it goes on running); it does not stop it, unlike in `tsvmm run`. A container's
// pty gets our keys as they are and follows our window size.

import type { ArgumentsCamelCase, Argv } from 'yargs';
import type { CommandBody } from './commands.js';
import { openConsole, type ConsoleStream } from '../api/control-client.js';
import type { TerminalSize } from '../api/protocol.js';
import { ConsoleEscape, escapeHelp } from './console-escape.js';
import { reportError } from './output.js';

export const consoleCommand: CommandBody<{ name: string }> = {
  builder: (y: Argv) => y.positional('name', { type: 'string', demandOption: true }) as Argv<{ name: string }>,
  handler: async (args: ArgumentsCamelCase<{ name: string }>) => {
    const stdin = process.stdin;
    const interactive = stdin.isTTY === true;
    const size = (): TerminalSize | undefined => (process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : undefined);
    let attached: ConsoleStream;
    try {
      attached = await openConsole(args.name, size());
    } catch (error) {
      process.exitCode = reportError(error);
      return;
    }
    const { socket } = attached;
    // A container's pty follows our size, as with `docker attach`.
    const onResize = () => { const s = size(); if (s) attached.resize(s).catch(() => {}); };
    if (attached.terminal) process.stdout.on('resize', onResize);
    if (interactive) {
      stdin.setRawMode(true);
      process.stderr.write(`tsvmm: attached to ${args.name}; Ctrl-A X detaches\r\n`);
    }
    const escape = new ConsoleEscape();
    const detach = () => {
      process.stdout.off('resize', onResize);
      if (interactive && stdin.isRaw) stdin.setRawMode(false);
      stdin.pause();
      socket.end();
    };
    socket.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    socket.on('close', () => {
      detach();
      if (interactive) process.stderr.write(`\r\ntsvmm: detached from ${args.name}\n`);
    });
    stdin.on('data', (data: Buffer) => {
      if (!interactive) {
        socket.write(data);
        return;
      }
      const { forward, commands } = escape.feed(data);
      if (forward.length) socket.write(forward);
      for (const command of commands) {
        if (command === 'quit') detach();
        else process.stderr.write(`\r\n${escapeHelp('detach (it goes on running; `tsvmm stop` ends it)')}\r\n`);
      }
    });
    stdin.on('end', () => { if (!interactive) setTimeout(detach, 200); });
    stdin.resume();
  },
};

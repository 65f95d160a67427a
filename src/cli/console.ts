// `tsvmm console NAME`: this terminal becomes the console of a VM running in the background.
// Ctrl-A X detaches (the VM goes on running); it does not stop the VM, unlike in `tsvmm run`.

import type { ArgumentsCamelCase, Argv } from 'yargs';
import type { CommandBody } from './commands.js';
import { attachConsole } from '../api/control-client.js';
import { ConsoleEscape } from './console-escape.js';
import { reportError } from './output.js';

export const consoleCommand: CommandBody<{ name: string }> = {
  builder: (y: Argv) => y.positional('name', { type: 'string', demandOption: true }) as Argv<{ name: string }>,
  handler: async (args: ArgumentsCamelCase<{ name: string }>) => {
    let socket;
    try {
      socket = await attachConsole(args.name);
    } catch (error) {
      process.exitCode = reportError(error);
      return;
    }
    const stdin = process.stdin;
    const interactive = stdin.isTTY === true;
    if (interactive) {
      stdin.setRawMode(true);
      process.stderr.write(`tsvmm: attached to ${args.name}; Ctrl-A X detaches\r\n`);
    }
    const escape = new ConsoleEscape();
    const detach = () => {
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
      if (commands.includes('quit')) detach();
    });
    stdin.on('end', () => { if (!interactive) setTimeout(detach, 200); });
    stdin.resume();
  },
};

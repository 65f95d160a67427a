import { describe, expect, it } from 'vitest';
import { COMMANDS, findCommand } from '../../src/cli/commands.js';

describe('the command table', () => {
  it('names each command once', () => {
    const names = COMMANDS.map((c) => c.command.split(' ', 1)[0]);
    expect(new Set(names).size).toBe(names.length);
  });

  it('loads a module with a handler for every command, and nothing for other words', async () => {
    for (const entry of COMMANDS) {
      const body = await entry.load();
      expect(typeof body.handler, entry.command).toBe('function');
      expect(findCommand(entry.command.split(' ', 1)[0])).toBe(entry);
    }
    expect(findCommand('--help')).toBeUndefined();
    expect(findCommand(undefined)).toBeUndefined();
  });
});

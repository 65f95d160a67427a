import { describe, expect, it } from 'vitest';
import { ConsoleEscape } from '../../src/cli/console-escape.js';

const feed = (e: ConsoleEscape, s: string) => {
  const r = e.feed(Buffer.from(s, 'latin1'));
  return { forward: Buffer.from(r.forward).toString('latin1'), commands: r.commands };
};

describe('console escapes (Ctrl-A)', () => {
  it('passes ordinary input through', () => {
    expect(feed(new ConsoleEscape(), 'ls -l\r')).toEqual({ forward: 'ls -l\r', commands: [] });
  });

  it('turns Ctrl-A X into quit, in either case, also split across reads', () => {
    expect(feed(new ConsoleEscape(), 'ab\x01x')).toEqual({ forward: 'ab', commands: ['quit'] });
    const e = new ConsoleEscape();
    expect(feed(e, 'q\x01')).toEqual({ forward: 'q', commands: [] });
    expect(feed(e, 'X')).toEqual({ forward: '', commands: ['quit'] });
  });

  it('sends one Ctrl-A for Ctrl-A Ctrl-A, shows help for Ctrl-A H and swallows unknown escapes', () => {
    expect(feed(new ConsoleEscape(), '\x01\x01\x01h\x01z!')).toEqual({ forward: '\x01!', commands: ['help'] });
  });
});

// The dashboard's key map, as blessed reports keys (Enter comes twice: 'enter' and 'return').

import { describe, expect, it } from 'vitest';
import { BUTTONS, buttonText, ConsoleKeys, confirmKey, form, formKey, helpKey, KEY_HELP, lineKey, listAction, movedKey, type Key } from '../../src/tui/keys.js';

const ch = (c: string): Key => ({ name: /^[a-z]$/.test(c) ? c : undefined, ch: c, sequence: c, full: c });
const named = (name: string, sequence = '', extra: Partial<Key> = {}): Key => ({ name, sequence, full: name, ...extra });
const ctrl = (c: string): Key => ({ name: c, ctrl: true, sequence: String.fromCharCode(c.charCodeAt(0) - 96), full: `C-${c}` });

describe('BUTTONS', () => {
  it('does for each button what its key does, for every action the issue lists', () => {
    for (const b of BUTTONS) {
      const key = b.key === 'Enter' ? named('enter', '\r') : ch(b.key);
      expect(listAction(key), b.label).toBe(b.action);
    }
    expect(BUTTONS.map((b) => b.action)).toEqual(['boot-default', 'container', 'pause-resume', 'stop', 'snapshot', 'restore', 'console', 'side-by-side', 'filter', 'help']);
    expect(buttonText(BUTTONS[0]!)).toBe('[b boot]');
  });
});

describe('listAction', () => {
  it('maps the documented keys: lazydocker\'s and htop\'s where they have one', () => {
    const keys = ['b', 'B', 'c', 'p', 's', 'k', 'x', 'S', 'R', 'a', 'v', 'U', '/', '\\', '<', '>', 'P', 'M', 'T', 'I', 'e', '?', 'h', 'q'];
    expect(keys.map((c) => listAction(ch(c)))).toEqual([
      'boot-default', 'boot-form', 'container', 'pause-resume', 'stop', 'stop', 'stop', 'snapshot', 'restore', 'console', 'side-by-side',
      'unmark-all', 'filter', 'filter', 'sort-previous', 'sort-next', 'sort-cpu', 'sort-memory', 'sort-uptime', 'sort-invert',
      'toggle-ended', 'help', 'help', 'quit',
    ]);
    expect(['f1', 'f6', 'f9', 'f10'].map((f) => listAction(named(f)))).toEqual(['help', 'sort-next', 'stop', 'quit']);
    expect(listAction(named('up', '\x1b[A'))).toBe('up');
    expect(listAction(named('down', '\x1b[B'))).toBe('down');
    expect(['pageup', 'pagedown', 'home', 'end'].map((n) => listAction(named(n)))).toEqual(['page-up', 'page-down', 'first', 'last']);
    expect(listAction(named('space', ' ', { ch: ' ' }))).toBe('mark');
    expect(listAction(named('escape', '\x1b'))).toBe('clear-filter');
    expect(listAction(ctrl('c'))).toBe('quit');
  });

  it('says where a key that moved went, instead of surprising', () => {
    expect(listAction(ch('d'))).toBeUndefined();
    expect(movedKey(ch('d'))).toMatch(/stop is s/);
    expect(movedKey(ch('r'))).toMatch(/restore is R/);
    expect(movedKey(ch('z'))).toBeUndefined();
  });

  it('acts once per Enter: on the enter event, not on its return twin', () => {
    expect(listAction(named('enter', '\r'))).toBe('console');
    expect(listAction(named('return', '\r'))).toBeUndefined();
  });

  it('ignores other keys and control combinations', () => {
    expect(listAction(ch('z'))).toBeUndefined();
    expect(listAction(ctrl('b'))).toBeUndefined();
  });

  it('documents every action in the help', () => {
    const help = KEY_HELP.map(([k]) => k).join(' ');
    for (const k of ['b', 'B', 'c', 'p', 's, k, F9, x', 'S', 'R', 'Enter, a', 'v', 'Space, U', '/', 'F6, <, >', 'P, M, T', 'I', 'e', '?, h, F1', 'q, F10, Ctrl-C']) {
      expect(help).toContain(k);
    }
  });
});

describe('ConsoleKeys', () => {
  it('forwards what the terminal sent, Enter once, arrows and Ctrl-C included', () => {
    const keys = new ConsoleKeys();
    expect(keys.feed(ch('h'))).toEqual({ forward: 'h' });
    expect(keys.feed(named('enter', '\r'))).toEqual({ forward: '\r' });
    expect(keys.feed(named('return', '\r'))).toEqual({});
    expect(keys.feed(named('up', '\x1b[A'))).toEqual({ forward: '\x1b[A' });
    expect(keys.feed(ctrl('c'))).toEqual({ forward: '\x03' });
  });

  it('leaves on Esc and on Ctrl-A X; Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A then another key sends that key', () => {
    const keys = new ConsoleKeys();
    expect(keys.feed(named('escape', '\x1b'))).toEqual({ leave: true });
    expect(keys.feed(ctrl('a'))).toEqual({});
    expect(keys.feed(ch('x'))).toEqual({ leave: true });
    expect(keys.feed(ctrl('a'))).toEqual({});
    expect(keys.feed(ctrl('a'))).toEqual({ forward: '\x01' });
    expect(keys.feed(ctrl('a'))).toEqual({});
    expect(keys.feed(ch('y'))).toEqual({ forward: 'y' });
    expect(keys.feed(ch('x'))).toEqual({ forward: 'x' });
  });
});

describe('help and filter keys', () => {
  it('scrolls the help with Up/Down/PgUp/PgDn and closes it on any other key', () => {
    expect(helpKey(named('down'))).toEqual({ scroll: 1 });
    expect(helpKey(named('pageup'))).toEqual({ scroll: -10 });
    expect(helpKey(ch('q'))).toEqual({ close: true });
    expect(helpKey(named('return', '\r'))).toEqual({});
  });

  it('edits the filter; Enter keeps it, Esc clears it', () => {
    let v = '';
    for (const c of 'vmx') v = lineKey(v, ch(c)).value;
    v = lineKey(v, named('backspace', '\x7f')).value;
    expect(v).toBe('vm');
    expect(lineKey(v, named('enter', '\r'))).toEqual({ value: 'vm', result: 'keep' });
    expect(lineKey(v, named('escape', '\x1b'))).toEqual({ value: '', result: 'clear' });
  });
});

describe('forms and confirmations', () => {
  it('edits the focused field, moves with Tab and Up, submits on Enter and cancels on Esc', () => {
    let f = form('boot', [{ label: 'kernel', value: '' }, { label: 'memory', value: '256M' }]);
    for (const c of 'a.elf') f = formKey(f, ch(c)).form;
    f = formKey(f, named('tab', '\t')).form;
    f = formKey(f, named('backspace', '\x7f')).form;
    f = formKey(f, named('backspace', '\x7f')).form;
    f = formKey(f, ch('1')).form;
    expect(f.fields.map((x) => x.value)).toEqual(['a.elf', '251']);
    expect(f.focus).toBe(1);
    f = formKey(f, ctrl('u')).form;
    expect(f.fields[1]!.value).toBe('');
    expect(formKey(f, named('up')).form.focus).toBe(0);
    expect(formKey(f, named('tab', '\t', { shift: true })).form.focus).toBe(0);
    expect(formKey(f, named('enter', '\r')).result).toBe('submit');
    expect(formKey(f, named('return', '\r')).result).toBeUndefined();
    expect(formKey(f, named('escape', '\x1b')).result).toBe('cancel');
  });

  it('confirms only on y', () => {
    expect(confirmKey(ch('y'))).toBe('yes');
    expect(confirmKey(ch('n'))).toBe('no');
    expect(confirmKey(named('escape', '\x1b'))).toBe('no');
    expect(confirmKey(named('enter', '\r'))).toBeUndefined();
    expect(confirmKey(ch('x'))).toBeUndefined();
  });
});

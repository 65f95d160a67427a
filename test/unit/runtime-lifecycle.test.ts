// tsvmm-runc's state machine (created → running → paused → stopped) with every refused
// transition in runc's words, its command-line parsing, signals and ids.

import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/runtime/cli.js';
import { RuntimeError } from '../../src/runtime/errors.js';
import { checkTransition, type Operation, type Status } from '../../src/runtime/lifecycle.js';
import { parseSignal } from '../../src/runtime/runtime.js';
import { checkId } from '../../src/runtime/state.js';

const STATUSES: Status[] = ['creating', 'created', 'running', 'paused', 'stopped'];

/** What runc says for each refused (operation, status); absent pairs are allowed. */
const REFUSED: Partial<Record<Operation, Partial<Record<Status, string>>>> = {
  start: {
    creating: 'cannot start container c1: it is still being created',
    running: 'cannot start an already running container',
    paused: 'cannot start an already running container',
    stopped: 'cannot start a container that has stopped',
  },
  kill: { creating: 'container not running', stopped: 'container not running' },
  pause: { creating: 'container not running', paused: 'container not running', stopped: 'container not running' },
  resume: { creating: 'container not paused', created: 'container not paused', running: 'container not paused', stopped: 'container not paused' },
  exec: { creating: 'cannot exec in a stopped container', paused: 'cannot exec in a paused container', stopped: 'cannot exec in a stopped container' },
  delete: {
    creating: 'cannot delete container c1 that is not stopped: creating',
    running: 'cannot delete container c1 that is not stopped: running',
    paused: 'cannot delete container c1 that is not stopped: paused',
  },
  'delete --force': {},
};

describe('the container lifecycle', () => {
  for (const [operation, refused] of Object.entries(REFUSED) as [Operation, Partial<Record<Status, string>>][]) {
    it(`${operation}: allowed from ${STATUSES.filter((s) => !refused[s]).join(', ')}; refused otherwise in runc's words`, () => {
      for (const status of STATUSES) {
        const expected = refused[status];
        if (expected === undefined) {
          expect(() => checkTransition(operation, status, 'c1')).not.toThrow();
        } else {
          expect(() => checkTransition(operation, status, 'c1')).toThrow(new RuntimeError(expected));
        }
      }
    });
  }

  it('walks created → running → paused → running → stopped → deleted', () => {
    const path: [Operation, Status][] = [['start', 'created'], ['pause', 'running'], ['resume', 'paused'], ['kill', 'running'], ['delete', 'stopped']];
    for (const [operation, status] of path) expect(() => checkTransition(operation, status, 'c1')).not.toThrow();
  });
});

describe('tsvmm-runc arguments', () => {
  const table = { values: { bundle: 'b', 'pid-file': undefined, env: 'e' }, booleans: { detach: 'd', all: 'a' }, repeated: ['env'] };

  it('reads flags as Go does (--x v, --x=v, -x v, short aliases) up to the first argument', () => {
    const parsed = parseFlags(['--bundle', '/b', '-pid-file=/p', '-d', '-e', 'A=1', '--env=B=2', 'ID', '--all', 'sh'], table);
    expect(parsed.values).toEqual({ bundle: '/b', 'pid-file': '/p' });
    expect(parsed.lists).toEqual({ env: ['A=1', 'B=2'] });
    expect([...parsed.flags]).toEqual(['detach']);
    expect(parsed.rest).toEqual(['ID', '--all', 'sh']);
  });

  it('refuses unknown flags and missing values in one line', () => {
    expect(() => parseFlags(['--nope', 'ID'], table)).toThrow('flag provided but not defined: -nope');
    expect(() => parseFlags(['--bundle'], table)).toThrow('flag needs an argument: -bundle');
    expect(() => parseFlags(['--detach=maybe'], table)).toThrow('invalid boolean value "maybe" for -detach');
  });

  it('takes signals by name or number, and refuses others', () => {
    expect(parseSignal(undefined)).toBe(15);
    expect(parseSignal('KILL')).toBe(9);
    expect(parseSignal('SIGKILL')).toBe(9);
    expect(parseSignal('9')).toBe(9);
    expect(() => parseSignal('NOPE')).toThrow('unknown signal "NOPE"');
    expect(() => parseSignal('99')).toThrow('unknown signal "99"');
  });

  it('takes container ids as runc does', () => {
    expect(checkId('abc-1.2_x+y')).toBe('abc-1.2_x+y');
    expect(() => checkId('')).toThrow('container id cannot be empty');
    expect(() => checkId('a/b')).toThrow('invalid container id format: a/b');
    expect(() => checkId('..')).toThrow('invalid container id format: ..');
  });
});

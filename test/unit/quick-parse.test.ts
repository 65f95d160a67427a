import { describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { COMMANDS, findCommand, type CommandBody } from '../../src/cli/commands.js';
import { quickRun } from '../../src/cli/quick-parse.js';

/** A method of yargs called on yargs itself (its private fields refuse a proxy as `this`). */
function bound(target: object, name: string | symbol): unknown {
  const value = Reflect.get(target, name);
  return typeof value === 'function' ? value.bind(target) : value;
}

type Builder = Extract<CommandBody['builder'], (...args: never[]) => unknown>;

/**
 * `body` with a handler that keeps its arguments in `got`, and so for the subcommands its
 * builder registers (container run): the yargs it is given passes them on wrapped.
 */
function capturing(body: CommandBody, got: { args?: Record<string, unknown> }): CommandBody {
  const builder = body.builder;
  return {
    ...body,
    handler: (args) => { got.args = { ...args }; },
    builder: typeof builder === 'function'
      ? ((y) => (builder as Builder)(new Proxy(y, {
        get: (target, name) => (name === 'command'
          ? (module: CommandBody) => target.command(capturing(module, got) as never)
          : bound(target, name)),
      }))) as Builder
      : builder,
  };
}

/** The arguments yargs hands the command's handler, or undefined if it refuses the words. */
async function viaYargs(argv: string[]): Promise<Record<string, unknown> | undefined> {
  const entry = findCommand(argv[0])!;
  const got: { args?: Record<string, unknown> } = {};
  try {
    await yargs(argv).scriptName('tsvmm').command({ command: entry.command, describe: entry.describe, ...capturing(await entry.load(), got) } as never)
      .strict().exitProcess(false).fail((message, error) => { throw error ?? new Error(message); }).parseAsync();
  } catch {
    return undefined;
  }
  return got.args;
}

/** The arguments the fast path hands the handler, or undefined if it leaves the words to yargs. */
async function viaQuick(argv: string[]): Promise<Record<string, unknown> | undefined> {
  const entry = findCommand(argv[0])!;
  const got: { args?: Record<string, unknown> } = {};
  return (await quickRun([argv[0]!], entry.command, capturing(await entry.load(), got), argv.slice(1))) ? got.args : undefined;
}

describe('the fast path of the command line', () => {
  const accepted = [
    ['ps'], ['ps', '--json'],
    ['run', '-q', '--kernel', 'k.elf', '--cmdline', 'mode=exits count=0'],
    ['run', '--mem', '512M', '--cpus', '2', '--disk', 'a.img', '--disk', 'b.img,ro', '--rng', '--console', 'virtio', '--name', 'x', '-d', '--no-json'],
    ['pause', 'vm1'], ['resume', 'vm1'], ['stop', '010'], ['stop', 'c1', '--timeout', '0'], ['console', 'vm1'],
    ['snapshot', 'vm1', 'f.snap', '--diff'], ['snapshot', 'verify', 'f.snap'], ['verify', 'f.snap'], ['restore', 'f.snap'], ['restore', 'f.snap', '--verify', '--disk-path', 'a=b', '--disk-path=c=d', '-d'],
    ['container', 'run', '--rootfs', '/r', '--mem', '64M', '--cpus', '0.5', '--pids', '10', '-e', 'A=1', '--env', 'B=2', '--net', 'veth', '--', 'sh', '-c', 'echo 010'],
    ['container', 'run', '--bundle=/b', '--read-only', '--layer', 'l1', '--layer', 'l2'],
    ['container', 'run', '--rootfs', '/r', 'true', '--', 'x'],
    ['update', 'c1', '--mem', '32M'],
    ['compare', '--quick', '--only', 'start'],
  ];
  it.each(accepted)('hands the handler what yargs would: %s', async (...argv) => {
    const expected = await viaYargs(argv);
    expect(expected, 'yargs takes these words').toBeDefined();
    expect(await viaQuick(argv)).toEqual(expected);
  });

  const refused = [
    ['ps', '--bogus'], ['ps', 'extra'], ['ps', '--help'], ['run', '--version'], ['run', '--console', 'bogus'],
    ['run', '--cpus', 'abc'], ['stop', 'c1', '--timeout', '-1'], ['pause'], ['pause', 'a', 'b'], ['container'], ['container', 'fly'], ['snapshot', 'vm1'], ['verify'],
  ];
  it.each(refused)('leaves to yargs what it would refuse or explain: %s', async (...argv) => {
    expect(await viaQuick(argv)).toBeUndefined();
  });

  it('covers every command', () => {
    const named = new Set([...accepted, ...refused].map((a) => a[0]));
    for (const c of COMMANDS) if (c.command !== 'dashboard') expect(named, c.command).toContain(c.command.split(' ', 1)[0]);
  });
});

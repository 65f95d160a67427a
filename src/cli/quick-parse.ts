// The command line's fast path. Loading and setting up yargs costs about a fifth of Node's own
// start-up, more than most commands' own work; yet most command lines are ones yargs would take
// as they are. So the command's builder runs first on a stand-in that only keeps what it is told
// (options, positionals, subcommands), and yargs' own parser (yargs-parser) reads the words with
// those declarations. Only a command line that needs nothing more is run from here: --help or
// --version, an option the command does not declare, a value outside its choices or one its
// coerce refuses, a missing or extra argument, or a builder calling what the stand-in does not
// keep, all go to yargs, which parses again and answers as it always does. The options are still
// declared once, with yargs' API, in each command's module.

import parser from 'yargs-parser';
import type { Argv, CommandModule, Options, PositionalOptions } from 'yargs';
import type { CommandBody } from './commands.js';

/** A builder asked for something this fast path does not model: yargs must parse. */
class NeedsYargs extends Error {}

type Spec = Options & PositionalOptions;

/** What a builder declared. */
interface Declared {
  options: Map<string, Spec>;
  positionals: Map<string, Spec>;
  commands: CommandModule[];
}

// Calls that only shape help text: kept nowhere, since a command line that wants help goes to yargs.
const HELP_ONLY = new Set(['group', 'example', 'epilog', 'epilogue', 'usage', 'wrap', 'demandCommand', 'strict', 'hide']);

function declare(builder: CommandBody['builder']): Declared {
  const declared: Declared = { options: new Map(), positionals: new Map(), commands: [] };
  if (builder === undefined) return declared;
  if (typeof builder !== 'function') throw new NeedsYargs('an object builder');
  const stand: Argv = new Proxy({} as Argv, {
    get(_target, name) {
      if (name === 'option') return (key: string, spec: Spec = {}) => { declared.options.set(key, spec); return stand; };
      if (name === 'options') {
        return (specs: Record<string, Spec>) => {
          for (const [key, spec] of Object.entries(specs)) declared.options.set(key, spec);
          return stand;
        };
      }
      if (name === 'positional') return (key: string, spec: Spec = {}) => { declared.positionals.set(key, spec); return stand; };
      if (name === 'command') {
        return (module: unknown) => {
          if (typeof module !== 'object' || module === null) throw new NeedsYargs('a command given in pieces');
          declared.commands.push(module as CommandModule);
          return stand;
        };
      }
      if (typeof name === 'string' && HELP_ONLY.has(name)) return () => stand;
      throw new NeedsYargs(String(name));
    },
  });
  builder(stand);
  return declared;
}

/** The positional arguments of a yargs command string such as `snapshot <name> <file>` or `run [command..]`. */
function positionalsOf(command: string): { name: string; required: boolean; variadic: boolean }[] {
  return command.split(' ').slice(1).map((word) => ({
    name: word.slice(1, -1).replace(/\.\.$/, ''),
    required: word.startsWith('<'),
    variadic: word.endsWith('..>') || word.endsWith('..]'),
  }));
}

const camel = (name: string): string => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Runs `body`'s handler on `args` (the words after `path`, the command's name and any
 * subcommand's) if yargs would have taken them as they are; false if yargs must parse instead.
 */
export async function quickRun(path: string[], command: string, body: CommandBody, args: string[]): Promise<boolean> {
  const dashes = args.indexOf('--');
  const ours = dashes < 0 ? args : args.slice(0, dashes);
  if (ours.some((a) => a === '--help' || a === '-h' || a === '--version')) return false;
  let declared: Declared;
  try {
    declared = declare(body.builder);
  } catch (error) {
    if (error instanceof NeedsYargs) return false;
    throw error;
  }

  if (declared.commands.length > 0) {
    const word = ours[0];
    const sub = declared.commands.find((c) => typeof c.command === 'string' && c.command.split(' ', 1)[0] === word);
    if (word === undefined || sub === undefined || typeof sub.command !== 'string') return false;
    return quickRun([...path, word], sub.command, sub, args.slice(1));
  }

  const options = [...declared.options];
  const of = (test: (spec: Spec) => boolean) => options.filter(([, spec]) => test(spec)).map(([key]) => key);
  const alias: Record<string, string[]> = {};
  for (const [key, spec] of options) if (spec.alias !== undefined) alias[key] = ([] as string[]).concat(spec.alias);
  const parsed = parser.detailed(args, {
    alias,
    boolean: of((s) => s.type === 'boolean'),
    string: of((s) => s.type === 'string'),
    number: of((s) => s.type === 'number'),
    array: of((s) => s.array === true),
    default: Object.fromEntries(options.filter(([, s]) => s.default !== undefined).map(([key, s]) => [key, s.default])),
    coerce: Object.fromEntries(options.filter(([, s]) => s.coerce !== undefined).map(([key, s]) => [key, s.coerce!])),
    // Positionals keep their words ("010" stays "010"), as yargs gives a string positional.
    configuration: { 'parse-positional-numbers': false, 'dot-notation': false },
  });
  if (parsed.error) return false;
  const argv = parsed.argv as Record<string, unknown> & { _: (string | number)[] };

  // Strict: every key must be a declared option (under one of its names) or the positionals' list.
  const known = new Set<string>(['_', '--']);
  for (const [key, spec] of options) {
    for (const name of [key, ...([] as string[]).concat(spec.alias ?? [])]) known.add(name).add(camel(name));
  }
  if (Object.keys(argv).some((key) => !known.has(key))) return false;
  for (const [key, spec] of options) {
    const value = argv[key];
    if (spec.demandOption && value === undefined) return false;
    if (spec.choices && value !== undefined && !([] as unknown[]).concat(value).every((v) => (spec.choices as unknown[]).includes(v))) return false;
  }

  // Positionals, by the command string; any the builder typed other than as strings go to yargs.
  // Words after `--` are no positionals: yargs leaves them in `_`, after the command's path.
  const afterDashes = dashes < 0 ? [] : args.slice(dashes + 1);
  const words = argv._.map(String).slice(0, argv._.length - afterDashes.length);
  const result: Record<string, unknown> = { ...argv, _: [...path, ...afterDashes], $0: 'tsvmm' };
  const wanted = positionalsOf(command);
  for (const { name, required, variadic } of wanted) {
    const spec = declared.positionals.get(name) ?? {};
    if ((spec.type !== undefined && spec.type !== 'string') || spec.coerce || spec.choices) return false;
    const value = variadic ? words.splice(0) : words.shift();
    if (required && (value === undefined || (Array.isArray(value) && value.length === 0))) return false;
    const given = value ?? spec.default;
    if (given !== undefined) result[name] = result[camel(name)] = given;
  }
  if (words.length > 0) return false;
  await body.handler(result as Parameters<CommandBody['handler']>[0]);
  return true;
}

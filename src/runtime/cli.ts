// tsvmm-runc's command line: runc's, as containerd, Docker, podman and CRI-O call it:
//   tsvmm-runc [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND [OPTIONS] ID [ARGS]
// Options come before the id (as urfave/cli reads them); for exec, everything after the id is
// the command. Errors are one line and exit status 1; run and exec pass the process's status on.
// Kept free of yargs and of the VMM: every verb is a process start of its own.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isTsvmmError } from '../errors.js';
import { packageVersion } from '../meta/package.js';
import { ColdNeeded, RuntimeError } from './errors.js';
import type { RuncIo } from './io.js';
import { Log, type LogFormat } from './log.js';
import { Runtime } from './runtime.js';
import { DEFAULT_ROOT, OCI_VERSION } from './state.js';
import { runcSpec } from './spec-template.js';

interface FlagTable {
  /** long name → short alias */
  values: Record<string, string | undefined>;
  booleans: Record<string, string | undefined>;
  /** value flags that may repeat */
  repeated?: string[];
}

const GLOBAL: FlagTable = {
  values: { root: undefined, log: undefined, 'log-format': undefined, criu: undefined, rootless: undefined },
  booleans: { debug: undefined, 'systemd-cgroup': undefined, help: 'h', version: 'v' },
};

const CREATE_FLAGS = {
  values: { bundle: 'b', 'pid-file': undefined, 'console-socket': undefined, 'preserve-fds': undefined, 'pidfd-socket': undefined },
  booleans: { 'no-pivot': undefined, 'no-new-keyring': undefined },
};

const COMMANDS: Record<string, FlagTable & { usage: string }> = {
  create: { ...CREATE_FLAGS, usage: 'create [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] <container-id>' },
  run: { values: CREATE_FLAGS.values, booleans: { ...CREATE_FLAGS.booleans, detach: 'd', keep: undefined }, usage: 'run [--bundle DIR] [--detach] [--pid-file FILE] <container-id>' },
  start: { values: {}, booleans: {}, usage: 'start <container-id>' },
  state: { values: {}, booleans: {}, usage: 'state <container-id>' },
  kill: { values: {}, booleans: { all: 'a' }, usage: 'kill [--all] <container-id> [SIGNAL]' },
  delete: { values: {}, booleans: { force: 'f' }, usage: 'delete [--force] <container-id>' },
  pause: { values: {}, booleans: {}, usage: 'pause <container-id>' },
  resume: { values: {}, booleans: {}, usage: 'resume <container-id>' },
  ps: { values: { format: 'f' }, booleans: {}, usage: 'ps [--format table|json] <container-id>' },
  list: { values: { format: 'f' }, booleans: { quiet: 'q' }, usage: 'list [--format table|json] [--quiet]' },
  exec: {
    values: { process: 'p', 'pid-file': undefined, 'console-socket': undefined, cwd: undefined, env: 'e', user: 'u', 'preserve-fds': undefined, 'process-label': undefined, apparmor: undefined, cap: 'c', 'additional-gids': 'g', 'pidfd-socket': undefined },
    booleans: { detach: 'd', tty: 't', 'no-new-privs': undefined, 'ignore-paused': undefined },
    repeated: ['env', 'cap', 'additional-gids'],
    usage: 'exec [--process FILE | <command> [args]] [--detach] [--pid-file FILE] [--tty] [--console-socket SOCKET] [--cwd DIR] [--env K=V] [--user UID[:GID]] <container-id> ...',
  },
  spec: { values: { bundle: 'b' }, booleans: { rootless: undefined }, usage: 'spec [--bundle DIR]' },
  update: { values: { resources: 'r' }, booleans: {}, usage: 'update --resources FILE|- <container-id>' },
  events: { values: { interval: undefined }, booleans: { stats: undefined }, usage: 'events [--stats] [--interval DURATION] <container-id>' },
};

/** A Go duration as runc takes it (--interval 5s, 500ms, 1m30s); milliseconds. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!]!;
    at = re.lastIndex;
  }
  if (!text || at !== text.length || total <= 0) throw new RuntimeError(`invalid duration "${text}" (e.g. 5s, 500ms)`);
  return total;
}

interface Parsed {
  values: Record<string, string>;
  lists: Record<string, string[]>;
  flags: Set<string>;
  rest: string[];
}

/** Go-flag style: --name value, --name=value, -name, -n; stops at the first argument that is not a flag. */
export function parseFlags(argv: string[], table: FlagTable, stopAtPositional = true): Parsed {
  const out: Parsed = { values: {}, lists: {}, flags: new Set(), rest: [] };
  const byShort = new Map<string, string>();
  for (const [name, short] of [...Object.entries(table.values), ...Object.entries(table.booleans)]) if (short) byShort.set(short, name);
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (stopAtPositional) break;
      out.rest.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    let name = eq >= 0 ? body.slice(0, eq) : body;
    name = byShort.get(name) ?? name;
    if (name in table.booleans) {
      if (eq >= 0 && !['true', 'false'].includes(body.slice(eq + 1))) throw new RuntimeError(`invalid boolean value "${body.slice(eq + 1)}" for -${name}`);
      if (eq < 0 || body.slice(eq + 1) === 'true') out.flags.add(name);
      continue;
    }
    if (!(name in table.values)) throw new RuntimeError(`flag provided but not defined: -${name}`);
    let value: string | undefined;
    if (eq >= 0) value = body.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new RuntimeError(`flag needs an argument: -${name}`);
    if (table.repeated?.includes(name)) (out.lists[name] ??= []).push(value);
    else out.values[name] = value;
  }
  out.rest.push(...argv.slice(i));
  return out;
}

function usage(): string {
  return [
    'tsvmm-runc: an OCI runtime (runc\'s command line) running containers with tsvmm\'s container helper',
    '',
    'usage: tsvmm-runc [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND ...',
    '',
    'commands:',
    ...Object.values(COMMANDS).map((c) => `  ${c.usage}`),
    '',
    'environment:',
    '  TSVMM_RUNC_WARM=0          no warm create server: every create starts Node (by default a server per --root',
    '                             keeps create\'s Node half loaded between creates, listening on ROOT/warm:create.sock)',
    '  TSVMM_RUNC_WARM_IDLE=SECS  the server leaves after this long without a create (default 30)',
  ].join('\n');
}

function needId(rest: string[], command: string): string {
  const id = rest[0];
  if (!id) throw new RuntimeError(`"${command}" requires a container id (usage: tsvmm-runc ${COMMANDS[command]!.usage})`);
  return id;
}

/**
 * Runs one command with `io` (the cold process's own, or a warm create's: src/runtime/io.ts);
 * returns the exit status. A warm create that must run cold throws ColdNeeded.
 */
export async function main(argv: string[], io: RuncIo): Promise<number> {
  let log = new Log(undefined, 'text', false, io.stderr);
  const from = (file: string) => path.resolve(io.cwd, file);
  try {
    const global = parseFlags(argv, GLOBAL);
    const format = (global.values['log-format'] ?? 'text') as LogFormat;
    if (format !== 'text' && format !== 'json') throw new RuntimeError(`invalid log-format: ${format} (text or json)`);
    const [command, ...args] = global.rest;
    // The warm server takes create, the one verb whose Node start it saves (the front end sends no other).
    if (io.warm && (command !== 'create' || global.flags.has('version') || global.flags.has('help'))) throw new ColdNeeded(`${command} is not served warm`);
    log = new Log(global.values.log === undefined ? undefined : from(global.values.log), format, global.flags.has('debug'), io.stderr);
    if (global.flags.has('version')) {
      io.stdout(`tsvmm-runc version ${packageVersion()}\nspec: ${OCI_VERSION}\n`);
      return 0;
    }
    if (global.flags.has('help') || !command || command === 'help') {
      io.stdout(`${usage()}\n`);
      return command || global.flags.has('help') ? 0 : 1;
    }
    const table = COMMANDS[command];
    if (!table) throw new RuntimeError(`no such command: ${command} (see tsvmm-runc --help)`);
    log.debug(`${command} ${args.join(' ')}`);
    const opts = parseFlags(args, table);
    const runtime = new Runtime({
      root: from(global.values.root ?? DEFAULT_ROOT), log, systemdCgroup: global.flags.has('systemd-cgroup'),
      caller: { pid: io.pid, env: io.env }, helper: { forked: io.helper, spawn: !io.warm },
    });
    const out = (text: string) => { if (text) io.stdout(`${text}\n`); };
    const preserve = opts.values['preserve-fds'] ?? '0';
    if (!/^\d{1,4}$/.test(preserve)) throw new RuntimeError(`invalid value "${preserve}" for flag -preserve-fds`);
    const preserveFds = Number(preserve);
    if (opts.values['pidfd-socket']) throw new RuntimeError('--pidfd-socket is not supported by tsvmm-runc');

    switch (command) {
      case 'create':
      case 'run': {
        const id = needId(opts.rest, command);
        const optional = (file: string | undefined) => (file === undefined ? undefined : from(file));
        // The console socket stays as given: the helper connects to it from the caller's directory
        // (and made absolute it could pass sun_path's 108 bytes).
        const create = { bundle: from(opts.values.bundle ?? '.'), pidFile: optional(opts.values['pid-file']), consoleSocket: opts.values['console-socket'], preserveFds };
        if (command === 'create') return await runtime.create(id, create, 'create');
        if (opts.flags.has('detach')) {
          await runtime.create(id, create, 'create');
          await runtime.start(id);
          return 0;
        }
        return await runtime.create(id, create, 'run');
      }
      case 'start':
        await runtime.start(needId(opts.rest, command));
        return 0;
      case 'state':
        out(runtime.state(needId(opts.rest, command)));
        return 0;
      case 'kill':
        await runtime.kill(needId(opts.rest, command), opts.rest[1], opts.flags.has('all'));
        return 0;
      case 'delete':
        await runtime.delete(needId(opts.rest, command), opts.flags.has('force'));
        return 0;
      case 'pause':
        await runtime.pause(needId(opts.rest, command));
        return 0;
      case 'resume':
        await runtime.resume(needId(opts.rest, command));
        return 0;
      case 'ps':
        out(runtime.ps(needId(opts.rest, command), opts.values.format ?? 'table'));
        return 0;
      case 'list':
        out(runtime.list(opts.values.format ?? 'table', opts.flags.has('quiet')));
        return 0;
      case 'exec': {
        const id = needId(opts.rest, command);
        if (opts.values.apparmor || opts.values['process-label']) throw new RuntimeError('exec --apparmor/--process-label are not supported by tsvmm-runc');
        return await runtime.exec(id, {
          processFile: opts.values.process, args: opts.rest.slice(1), detach: opts.flags.has('detach'), pidFile: opts.values['pid-file'],
          tty: opts.flags.has('tty'), consoleSocket: opts.values['console-socket'], cwd: opts.values.cwd, env: opts.lists.env ?? [],
          user: opts.values.user, noNewPrivileges: opts.flags.has('no-new-privs'), caps: opts.lists.cap ?? [], preserveFds,
        });
      }
      case 'update': {
        const id = needId(opts.rest, command);
        const source = opts.values.resources;
        if (!source) throw new RuntimeError('update: give the new limits as --resources FILE (or - for stdin), a linux.resources object');
        let text: string;
        try {
          text = readFileSync(source === '-' ? 0 : source, 'utf8');
        } catch (error) {
          throw new RuntimeError(`--resources ${source}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        }
        runtime.update(id, text, source === '-' ? 'stdin' : source);
        return 0;
      }
      case 'events': {
        const id = needId(opts.rest, command);
        const interval = parseDuration(opts.values.interval ?? '5s');
        await runtime.events(id, interval, opts.flags.has('stats'), (line) => io.stdout(`${line}\n`));
        return 0;
      }
      case 'spec': {
        if (opts.flags.has('rootless')) throw new RuntimeError('spec --rootless is not supported by tsvmm-runc');
        const file = from(path.join(opts.values.bundle ?? '.', 'config.json'));
        if (existsSync(file)) throw new RuntimeError('File config.json exists. Remove it first');
        writeFileSync(file, `${JSON.stringify(runcSpec(), null, '\t')}\n`);
        return 0;
      }
    }
    throw new RuntimeError(`no such command: ${command}`);
  } catch (error) {
    if (error instanceof ColdNeeded) throw error;
    if (isTsvmmError(error)) {
      log.error(error.message);
      return 1;
    }
    log.error(`tsvmm-runc: internal error: ${(error as Error).stack ?? String(error)}`);
    return 1;
  }
}

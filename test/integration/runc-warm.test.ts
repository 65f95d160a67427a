// tsvmm-runc's warm create server (src/runtime/warm-server.ts): after a cold create, a server per
// root takes the next creates; a front end that finds no server, a stale socket or a server of
// another build runs cold. A warm create needs no `node` on the PATH (the front end never execs
// it), which is how these tests tell warm from cold.

import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runcBundle, type RuncConfig as Config } from '../helpers/container-rootfs.js';
import { engineMissingReason, RUNC } from '../helpers/engines.js';

const missing = engineMissingReason([]);
const SOCKET = 'warm:create.sock';

interface Result { code: number | null; stdout: string; stderr: string }

describe.skipIf(missing)('tsvmm-runc warm create', () => {
  let dir: string;
  let root: string;
  const suffix = () => `${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
  /** No node on the PATH: only a warm create can succeed. */
  const warmOnly = { ...process.env, PATH: '/nonexistent' } as Record<string, string>;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-runc-warm-'));
    root = path.join(dir, 'root');
  });

  afterEach(async () => {
    for (const id of existsSync(root) ? readdirSync(root) : []) if (!id.startsWith('warm:')) runc(['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
    // The server leaves once its root is gone.
    await expect.poll(() => serverPids(root), { timeout: 10_000 }).toEqual([]);
  });

  function runc(args: string[], env: Record<string, string | undefined> = process.env, cwd?: string): Result {
    const out = path.join(dir, `out-${suffix()}`);
    const err = path.join(dir, `err-${suffix()}`);
    const fds = [openSync(out, 'w'), openSync(err, 'w')];
    const r = spawnSync(RUNC, ['--root', root, ...args], { stdio: ['ignore', ...fds], timeout: 60_000, env, cwd });
    fds.forEach(closeSync);
    return { code: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  }

  /** The same, asynchronously (two creates at once). */
  function runcAsync(args: string[], env: Record<string, string | undefined>): Promise<Result> {
    return new Promise((resolve) => {
      const child = spawn(RUNC, ['--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      // 'exit', not 'close': the created init holds the pipes until it is started.
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  function serverPids(of: string): number[] {
    const r = spawnSync('pgrep', ['-f', '--', `--warm-server ${of} `], { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean).map(Number);
  }

  /** A bundle whose process waits (until started and killed) unless `change` says otherwise. */
  const bundle = (change: (c: Config) => void = () => {}) => runcBundle(dir, (c) => {
    c.process.args = ['sleep', '300'];
    change(c);
  });

  /** A cold create (which starts the server), then until the server takes creates. */
  async function warmUp(env: Record<string, string | undefined> = process.env): Promise<void> {
    const id = `first-${suffix()}`;
    const first = runc(['create', '--bundle', bundle(), id], env);
    expect(first.code, first.stderr).toBe(0);
    expect(runc(['delete', '--force', id]).code).toBe(0);
    await expect.poll(() => existsSync(path.join(root, SOCKET)), { timeout: 20_000 }).toBe(true);
  }

  it('round trip: create (warm, its error words and status as cold), start, state, delete; the caller\'s stdio is the container\'s; two creates at once', async () => {
    await warmUp();
    const [server] = serverPids(root);
    expect(server).toBeGreaterThan(0);
    // Its socket is this user's alone (the root is 0711: others may pass through it).
    expect(statSync(path.join(root, SOCKET)).mode & 0o777).toBe(0o600);
    // Its own session, in /, holding nothing of a caller's but /dev/null.
    expect(readFileSync(`/proc/${server}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]).toBe(String(server));
    expect(spawnSync('readlink', [`/proc/${server}/cwd`], { encoding: 'utf8' }).stdout.trim()).toBe('/');
    for (const fd of ['0', '1', '2']) expect(spawnSync('readlink', [`/proc/${server}/fd/${fd}`], { encoding: 'utf8' }).stdout.trim()).toBe('/dev/null');
    // Not in the cgroups of the process that started it (this test's, in the memory hierarchy
    // here), which it would otherwise keep from being removed: at the top of every hierarchy.
    expect(readFileSync(`/proc/${server}/cgroup`, 'utf8').trim().split('\n').filter((l) => !l.endsWith(':/'))).toEqual([]);

    // Relative --bundle and --pid-file are the caller's (its cwd), not the server's.
    const id = `warm-${suffix()}`;
    const b = bundle((c) => { c.process.args = ['sh', '-c', 'echo out here; echo err here >&2']; });
    const r = runc(['create', '--bundle', path.basename(b), '--pid-file', 'pid', id], warmOnly, dir);
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8'));
    expect(JSON.parse(runc(['state', id], warmOnly).stdout)).toMatchObject({ id, pid, status: 'created', bundle: b });
    expect(runc(['start', id], warmOnly).code).toBe(0);
    // The init had the create's stdout and stderr: the files runc() gave it.
    const outs = () => readdirSync(dir).filter((f) => f.startsWith('out-') || f.startsWith('err-')).map((f) => readFileSync(path.join(dir, f), 'utf8')).join('');
    await expect.poll(outs, { timeout: 10_000 }).toContain('out here\n');
    await expect.poll(outs, { timeout: 10_000 }).toContain('err here\n');
    await expect.poll(() => (JSON.parse(runc(['state', id]).stdout) as { status: string }).status, { timeout: 10_000 }).toBe('stopped');
    expect(runc(['delete', id], warmOnly).code).toBe(0);
    expect(existsSync(path.join(root, id))).toBe(false);

    // Errors: the same one line and status warm and cold.
    const invalid = bundle((c) => { c.process.args = 'sh'; });
    const errorCases = [
      ['create', '--bundle', invalid, `bad-${suffix()}`],
      ['create', '--bundle', path.join(dir, 'none'), `bad-${suffix()}`],
      ['create', '--bundle', bundle((c) => { c.process.args = ['no-such-command']; }), `bad-${suffix()}`],
      ['--log-format', 'json', 'create', '--bundle', invalid, `bad-${suffix()}`],
    ];
    for (const args of errorCases) {
      const warm = runc(args, warmOnly);
      const cold = runc(args, { ...process.env, TSVMM_RUNC_WARM: '0' });
      expect(warm.code).toBe(1);
      expect(cold.code).toBe(1);
      expect(warm.stderr.trim().split('\n')).toHaveLength(1);
      expect(warm.stderr.replace(/"time":"[^"]*"/, '')).toBe(cold.stderr.replace(/"time":"[^"]*"/, ''));
    }
    const taken = `taken-${suffix()}`;
    expect(runc(['create', '--bundle', bundle(), taken], warmOnly).code).toBe(0);
    expect(runc(['create', '--bundle', bundle(), taken], warmOnly)).toMatchObject({ code: 1, stderr: `container with given ID already exists: ${taken}\n` });
    expect(readdirSync(root).filter((f) => !f.startsWith('warm:')).sort()).toEqual([taken]);

    // Two at once (engines create in parallel), both warm.
    const ids = [`par-a-${suffix()}`, `par-b-${suffix()}`];
    const both = await Promise.all(ids.map((i) => runcAsync(['create', '--bundle', bundle(), i], warmOnly)));
    for (const one of both) expect(one.code, one.stderr).toBe(0);
    for (const i of ids) expect(JSON.parse(runc(['state', i]).stdout)).toMatchObject({ status: 'created' });
    // Still one server.
    expect(serverPids(root)).toEqual([server]);
  });

  it('a malformed request, a client of another uid, or a create that fails beside another, takes neither the server nor the other create down', async () => {
    await warmUp();
    const [server] = serverPids(root);
    const send = (bytes: Buffer) => new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const client = net.connect(path.join(root, SOCKET), () => client.end(bytes));
      client.on('data', (chunk: Buffer) => chunks.push(chunk));
      client.on('error', () => resolve(Buffer.concat(chunks)));
      client.on('close', () => resolve(Buffer.concat(chunks)));
    });
    const length = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    // Garbage, a length past the limit, a body without fds: each closed unanswered.
    expect((await send(Buffer.from('not a request'))).length).toBe(0);
    expect((await send(length(0xffffffff))).length).toBe(0);
    const body = Buffer.from(['tsvmm-runc-warm/1', 'b', '/', '1', '0', '0', ''].join('\0'));
    expect((await send(Buffer.concat([length(body.length), body]))).length).toBe(0);

    // Another uid is refused by the server itself (SO_PEERCRED), even where the socket's mode would let it
    // connect: a client that sends nothing is dropped at once, where one of ours is waited for (3 s).
    chmodSync(dir, 0o711);
    chmodSync(path.join(root, SOCKET), 0o666);
    const silent = "const t = Date.now(); const s = require('net').connect(process.argv[1]); s.on('error', () => {}); s.on('close', () => console.log(Date.now() - t));";
    const held = (asUser: string[]) => Number(spawnSync(asUser[0]!, [...asUser.slice(1), process.execPath, '-e', silent, path.join(root, SOCKET)], { encoding: 'utf8', timeout: 20_000 }).stdout);
    expect(held(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'])).toBeLessThan(1000);
    expect(held(['env'])).toBeGreaterThanOrEqual(2500);
    chmodSync(path.join(root, SOCKET), 0o600);

    const good = `good-${suffix()}`;
    const [bad, ok] = await Promise.all([
      runcAsync(['create', '--bundle', bundle((c) => { c.process.args = 'sh'; }), `bad-${suffix()}`], warmOnly),
      runcAsync(['create', '--bundle', bundle(), good], warmOnly),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/process\.args must be a list of strings\n$/);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(runc(['state', good]).stdout)).toMatchObject({ status: 'created' });
    expect(serverPids(root)).toEqual([server]);
  });

  it('runs cold without a server, with a stale socket file, or with a server of another build; hooks run cold', async () => {
    // No server yet: cold (needs node), and it starts one.
    expect(runc(['create', '--bundle', bundle(), `none-${suffix()}`], warmOnly).code).not.toBe(0);
    await warmUp();

    // A socket file nobody listens on.
    const [server] = serverPids(root);
    process.kill(server!, 'SIGKILL');
    await expect.poll(() => serverPids(root), { timeout: 10_000 }).toEqual([]);
    expect(existsSync(path.join(root, SOCKET))).toBe(true);
    expect(runc(['create', '--bundle', bundle(), `stale-${suffix()}`], warmOnly).code).not.toBe(0);
    await warmUp();

    // A server of another build: it declines and leaves; the create runs cold and starts one of this build.
    const [current] = serverPids(root);
    process.kill(current!, 'SIGTERM');
    await expect.poll(() => serverPids(root), { timeout: 10_000 }).toEqual([]);
    rmSync(path.join(root, SOCKET)); // the killed server's, so that the next one to appear is the other build's
    const other = spawn('node', [path.resolve('dist/bundle/runc.cjs'), '--warm-server', root, 'another-build'], { stdio: 'ignore', detached: true });
    other.unref();
    await expect.poll(() => serverPids(root), { timeout: 20_000 }).toEqual([other.pid]);
    await expect.poll(() => existsSync(path.join(root, SOCKET)), { timeout: 20_000 }).toBe(true);
    const id = `other-${suffix()}`;
    expect(runc(['create', '--bundle', bundle(), id]).code).toBe(0);
    expect(JSON.parse(runc(['state', id]).stdout)).toMatchObject({ status: 'created' });
    await expect.poll(() => serverPids(root).includes(other.pid!), { timeout: 10_000 }).toBe(false);
    await expect.poll(() => serverPids(root).length, { timeout: 20_000 }).toBe(1);
    await expect.poll(() => runc(['create', '--bundle', bundle(), `new-${suffix()}`], warmOnly).code, { timeout: 20_000 }).toBe(0);

    // Hooks need a helper the runtime spawns: declined before anything is done, and run cold.
    const log = path.join(dir, 'hooks.log');
    const hooked = bundle((c) => { c.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', `cat >> ${log}`] }] }; });
    expect(runc(['create', '--bundle', hooked, `hook-${suffix()}`], warmOnly).code).not.toBe(0);
    expect(existsSync(log)).toBe(false);
    const hook = `hook-${suffix()}`;
    expect(runc(['create', '--bundle', hooked, hook]).code).toBe(0);
    expect(JSON.parse(readFileSync(log, 'utf8'))).toMatchObject({ id: hook, status: 'creating' });
  });

  it('a relative --root that fits in sun_path only relatively starts no server (it would listen on a truncated name, forever)', async () => {
    // The front end connects to ROOT/warm:create.sock as given; the server binds under the
    // absolute root, here past sun_path's 108 bytes, where Node truncates the name silently.
    const deep = path.join(dir, 'd'.repeat(Math.max(1, 100 - dir.length)));
    mkdirSync(deep);
    const abs = path.join(deep, 'r');
    expect(Buffer.byteLength(`${abs}/.warm:create.sock.4194304`)).toBeGreaterThan(108);
    const id = `rel-${suffix()}`;
    try {
      // stdio of files: the created init holds it until it is started.
      const err = path.join(dir, `err-${suffix()}`);
      const fd = openSync(err, 'w');
      const r = spawnSync(RUNC, ['--root', 'r', 'create', '--bundle', bundle(), id], { cwd: deep, stdio: ['ignore', fd, fd], timeout: 60_000 });
      closeSync(fd);
      expect(r.status, readFileSync(err, 'utf8')).toBe(0);
      // Long enough for a started server to have taken the root's lock.
      await new Promise((resolve) => setTimeout(resolve, 4000));
      expect(serverPids(abs)).toEqual([]);
      expect(readdirSync(abs).filter((f) => f.includes('warm:'))).toEqual([]);
      // Nor does the server itself listen there, however started.
      const direct = spawnSync('node', [path.resolve('dist/bundle/runc.cjs'), '--warm-server', abs, 'b'], { timeout: 20_000 });
      expect(direct.status).toBe(2);
      expect(readdirSync(abs).filter((f) => f.includes('.warm:'))).toEqual([]);
    } finally {
      spawnSync(RUNC, ['--root', abs, 'delete', '--force', id]);
      for (const pid of serverPids(abs)) process.kill(pid, 'SIGKILL');
    }
  });

  it('the server leaves when idle and when its root goes; TSVMM_RUNC_WARM=0 starts none', async () => {
    await warmUp({ ...process.env, TSVMM_RUNC_WARM_IDLE: '1' });
    await expect.poll(() => serverPids(root), { timeout: 10_000 }).toEqual([]);
    expect(existsSync(path.join(root, SOCKET))).toBe(false);

    await warmUp();
    expect(serverPids(root)).toHaveLength(1);
    rmSync(root, { recursive: true, force: true });
    await expect.poll(() => serverPids(root), { timeout: 10_000 }).toEqual([]);

    const off = { ...process.env, TSVMM_RUNC_WARM: '0' };
    expect(runc(['create', '--bundle', bundle(), `off-${suffix()}`], off).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(serverPids(root)).toEqual([]);
    expect(existsSync(path.join(root, SOCKET))).toBe(false);
  });
});

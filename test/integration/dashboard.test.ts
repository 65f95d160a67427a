// `tsvmm dashboard` on a real terminal (tmux): the empty message, booting the demo guest, typing
// into its console, a snapshot that restores, stopping, a container beside the VM, help, and a
// terminal in cooked mode after q. Every step is checked on the screen a person would see.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvmMissingReason } from '../helpers/kvm.js';
import { TmuxSession, tmuxMissingReason } from '../helpers/tmux.js';
import { containerMissingReason } from '../helpers/container-rootfs.js';

function tsvmm(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function running(): { name: string; kind: string; state: string }[] {
  return JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string; kind: string; state: string }[];
}

/** Waits until the screen no longer shows `text` (in the list). */
async function waitGone(session: TmuxSession, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const screen = session.screen();
    if (!pattern.test(screen)) return screen;
    if (Date.now() > deadline) throw new Error(`screen still shows ${String(pattern)}:\n${screen}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Clicks the button whose text the screen shows (e.g. "[? help]"): an SGR mouse press and release
 * (ESC [ < 0 ; column ; row M, then m; 1-based), sent apart so that each reaches blessed on its own.
 */
async function click(session: TmuxSession, text: string): Promise<void> {
  const lines = session.screen().split('\n');
  const row = lines.findIndex((l) => l.includes(text));
  if (row < 0) throw new Error(`no ${text} on the screen:\n${lines.join('\n')}`);
  const column = [...lines[row]!.slice(0, lines[row]!.indexOf(text))].length + 2;
  session.type(`\x1b[<0;${column};${row + 1}M`);
  await new Promise((r) => setTimeout(r, 50));
  session.type(`\x1b[<0;${column};${row + 1}m`);
}

const rowOf = (name: string, kind: string, state: string) => new RegExp(`${name.replace(/[.]/g, '\\.')}\\s+${kind}\\s+${state}\\s+\\d+\\s+[\\d.]+ [MG]iB`);

describe.skipIf(kvmMissingReason ?? tmuxMissingReason)('tsvmm dashboard on a terminal', () => {
  // The runtime directory vitest gives this run, so that the dashboard sees what the tests start.
  const runtimeDir = process.env.TSVMM_RUNTIME_DIR!;
  const work = mkdtempSync(path.join(tmpdir(), 'tsvmm-dashboard-'));
  let session: TmuxSession;
  let vm = '';

  beforeAll(() => {
    expect(runtimeDir).toBeTruthy();
    for (const r of running()) tsvmm(['stop', r.name]);
    // The latest `tsvmm compare` results the side-by-side view shows: the committed example.
    const results = path.join(work, 'compare-latest.json');
    copyFileSync('docs/compare-example.json', results);
    session = new TmuxSession(`TSVMM_RUNTIME_DIR=${runtimeDir} TSVMM_COMPARE_RESULTS=${results} node bin/tsvmm.js dashboard`, process.cwd());
  });

  afterAll(() => {
    session?.kill();
    // What the dashboard started runs on without it: stop whatever a failed step left.
    for (const r of running()) tsvmm(['stop', r.name]);
  });

  it('says what to do when nothing runs', async () => {
    const screen = await session.waitFor('No VMs or containers are running. Press b to boot the demo guest or c to start a container.');
    expect(screen).toContain('tsvmm dashboard');
    expect(screen).toMatch(/NAME\s+KIND\s+STATE\s+VCPUS\s+MEMORY\s+CPU%\s+EXITS\/S\s+UPTIME/);
  });

  it('boots the demo guest on b and lists it as running, with its console and charts', async () => {
    session.type('b');
    const screen = await session.waitFor(/vm-[0-9a-f]{6}\s+vm\s+running/, 30_000);
    vm = /(vm-[0-9a-f]{6})\s+vm\s+running/.exec(screen)![1]!;
    expect(screen).toMatch(rowOf(vm, 'vm', 'running'));
    expect(screen).not.toContain('No VMs or containers are running');
    await session.waitFor(`console: ${vm} (Enter to type)`);
    await session.waitFor('hello: type something and I echo it');
    // Two polls give rates: a CPU % and an exits/s figure in the charts.
    const charts = await session.waitFor(/exits\/s\s+[\d.k]+\s+[▁▂▃▄▅▆▇█]+/);
    expect(charts).toMatch(/CPU %\s+[\d.]+\s+[▁▂▃▄▅▆▇█]+/);
    expect(running()).toEqual([expect.objectContaining({ name: vm, kind: 'vm', state: 'running' })]);
  });

  it('types into the console after Enter and shows the guest echo; Ctrl-A X leaves it', async () => {
    session.keys('Enter');
    await session.waitFor('Ctrl-A X or Esc leaves');
    session.type('hello dashboard');
    await session.waitFor('> hello dashboard');
    session.keys('Enter');
    await session.waitFor('hello: you typed "hello dashboard" (15 characters)');
    session.keys('C-a', 'x');
    await session.waitFor(`console: ${vm} (Enter to type)`);
    // Back in the list: keys are the dashboard's again, not the guest's.
    session.type('?');
    await session.waitFor('press any key to close');
    session.type(' ');
    await waitGone(session, /press any key to close/);
  });

  it('pauses and resumes the VM with p', async () => {
    session.type('p');
    await session.waitFor(rowOf(vm, 'vm', 'paused'));
    await session.waitFor(`${vm}: paused`);
    expect(running()).toEqual([expect.objectContaining({ name: vm, state: 'paused' })]);
    session.type('p');
    await session.waitFor(rowOf(vm, 'vm', 'running'));
    await session.waitFor(`${vm}: running`);
  });

  it('snapshots the VM to a file with s, and r restores the file as a second VM', async () => {
    const file = path.join(work, 'dash.snap');
    session.type('s');
    await session.waitFor(`snapshot ${vm}`);
    await session.waitFor(`${vm}.snap_`);
    session.keys('C-u');
    session.type(file);
    session.keys('Enter');
    await session.waitFor(`saved ${vm} to ${file}`, 30_000);
    expect(existsSync(file)).toBe(true);
    // The VM goes on after the save.
    await session.waitFor(rowOf(vm, 'vm', 'running'));

    session.type('r');
    await session.waitFor('restore a VM from a snapshot');
    session.type(file);
    session.keys('Enter');
    const screen = await session.waitFor(/restored (vm-[0-9a-f]{6})/, 30_000);
    const restored = /restored (vm-[0-9a-f]{6})/.exec(screen)![1]!;
    expect(restored).not.toBe(vm);
    await session.waitFor(rowOf(restored, 'vm', 'running'));
    // The restored guest is the saved one, waiting at its prompt: it still answers on its console.
    await session.waitFor(`console: ${restored} (Enter to type)`);
    session.keys('Enter');
    await session.waitFor('Ctrl-A X or Esc leaves');
    session.type('again');
    session.keys('Enter');
    await session.waitFor('hello: you typed "again" (5 characters)');
    session.keys('Escape');
    await session.waitFor(`console: ${restored} (Enter to type)`);
    expect(running().map((r) => r.name).sort()).toEqual([vm, restored].sort());

    // Stop the restored one: x asks first, n keeps it, y stops it and it leaves the list.
    session.type('x');
    await session.waitFor(`Stop VM ${restored}? (y/n)`);
    session.type('n');
    await waitGone(session, /\(y\/n\)/);
    expect(session.screen()).toMatch(rowOf(restored, 'vm', 'running'));
    session.type('x');
    await session.waitFor(`Stop VM ${restored}? (y/n)`);
    session.type('y');
    await waitGone(session, new RegExp(`${restored}\\s+vm`));
    expect(running().map((r) => r.name)).toEqual([vm]);
  });

  it.skipIf(containerMissingReason)('starts a busybox container with c and shows it beside the VM with v', async () => {
    session.type('c');
    await session.waitFor('start a container');
    expect(session.screen()).toContain('.cache/busybox-bundle/rootfs');
    session.keys('Enter');
    const screen = await session.waitFor(/(ctr-[0-9a-f]{6})\s+container\s+running/, 30_000);
    const ctr = /(ctr-[0-9a-f]{6})\s+container\s+running/.exec(screen)![1]!;
    expect(screen).toMatch(rowOf(vm, 'vm', 'running'));
    session.type('v');
    const side = await session.waitFor('─ side by side ');
    expect(side).toContain(`${vm} (vm, running)`);
    expect(side).toContain(`${ctr} (container, running)`);
    // Its console is the container's sh.
    await session.waitFor(`console: ${ctr} (Enter to type)`);
    session.keys('Enter');
    await session.waitFor('Ctrl-A X or Esc leaves');
    // It has a pty: the line discipline inside echoes, Backspace erases, Enter ends the line.
    session.type('echo from-the-$((6*7))-containerXY');
    session.keys('BSpace', 'BSpace', 'Enter');
    await session.waitFor(/│from-the-42-container\s*│/);
    expect(session.screen()).not.toMatch(/-containerX[^Y]|\^\?/);
    // Ctrl-C is SIGINT for the foreground job, not a byte: the shell is back long before 60 s.
    session.type('sleep 60');
    session.keys('Enter');
    await new Promise((r) => setTimeout(r, 500));
    session.keys('C-c');
    session.type('echo after-$((1+1))-interrupt');
    session.keys('Enter');
    await session.waitFor('after-2-interrupt', 10_000);
    session.keys('C-a', 'x');
    await session.waitFor(`console: ${ctr} (Enter to type)`);
    session.type('v');
    await waitGone(session, /─ side by side /);
    session.type('d');
    await session.waitFor(`Stop container ${ctr}? (y/n)`);
    session.type('y');
    await waitGone(session, new RegExp(`${ctr}\\s+container`), 30_000);
  });

  it('does with a mouse click on a button what the key does: help, pause/resume, side by side, boot', async () => {
    const buttons = session.screen();
    for (const b of ['[b boot]', '[c container]', '[p pause/resume]', '[s snapshot]', '[r restore]', '[x stop]', '[Enter console]', '[v side by side]', '[? help]']) {
      expect(buttons).toContain(b);
    }
    await click(session, '[? help]');
    await session.waitFor('press any key to close');
    // A click over the help closes it, as a key does.
    await click(session, '[? help]');
    await waitGone(session, /press any key to close/);

    await click(session, '[p pause/resume]');
    await session.waitFor(rowOf(vm, 'vm', 'paused'));
    await click(session, '[p pause/resume]');
    await session.waitFor(rowOf(vm, 'vm', 'running'));

    // Side by side: the two live ones, and under them the latest comparison's medians.
    await click(session, '[v side by side]');
    const side = await session.waitFor('─ side by side ');
    expect(side).toContain('─ VM vs container on this machine ');
    expect(side).toContain('latest tsvmm compare, 2026-11-23 on vm, 7 runs each');
    expect(side).toMatch(/Start latency\s+ms\s+71\.1\s+×27\s+22\.8\s+×8\.67\s+2\.63/);
    expect(side).toMatch(/Exit\/syscall-heavy work\s+µs\/op\s+9\.60\s+×54/);
    expect(side).toMatch(/Restore from the snapshot\s+ms\s+18\.9\s+n\/a/);
    // The console pane moves down under it and still shows the VM.
    expect(side).toContain(`console: ${vm} (Enter to type)`);
    await click(session, '[v side by side]');
    await waitGone(session, /─ side by side /);
    expect(session.screen()).not.toContain('VM vs container on this machine');

    await click(session, '[b boot]');
    const screen = await session.waitFor(/booted (vm-[0-9a-f]{6})/, 30_000);
    const second = /booted (vm-[0-9a-f]{6})/.exec(screen)![1]!;
    await session.waitFor(rowOf(second, 'vm', 'running'));
    await click(session, '[x stop]');
    await session.waitFor(`Stop VM ${second}? (y/n)`);
    session.type('y');
    await waitGone(session, new RegExp(`${second}\\s+vm`), 30_000);
    expect(running().map((r) => r.name)).toEqual([vm]);
  });

  it('stops the VM with x: it leaves the list and the empty message returns', async () => {
    session.type('x');
    await session.waitFor(`Stop VM ${vm}? (y/n)`);
    session.type('y');
    await session.waitFor('No VMs or containers are running', 30_000);
    expect(session.screen()).not.toMatch(new RegExp(`${vm}\\s+vm`));
    expect(running()).toEqual([]);
  });

  it('quits on q and leaves the terminal in cooked mode; what it started runs on', async () => {
    session.type('b');
    const screen = await session.waitFor(/vm-[0-9a-f]{6}\s+vm\s+running/, 30_000);
    const name = /(vm-[0-9a-f]{6})\s+vm\s+running/.exec(screen)![1]!;
    session.type('q');
    await session.waitFor('[exit=0]');
    expect(await session.waitFor('[tty:')).toContain('[tty: icanon echo ]');
    expect(running()).toEqual([expect.objectContaining({ name, state: 'running' })]);
    expect(tsvmm(['stop', name]).code).toBe(0);
  });
});

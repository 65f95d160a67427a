// `tsvmm dashboard` on a real terminal (tmux), at 80x24 and 120x40 with resizes between: the empty
// message, booting the demo guest, typing into its console, help that scrolls, a snapshot that
// restores, stopping (the instance stays a while as ended, with its outcome), a container beside
// the VM, filter and sort, a guest that shuts down itself, and a terminal in cooked mode after q.
// Every step is checked on the screen a person would see, and at each size that nothing is cut.

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

/**
 * Stops every instance of this test run's runtime directory and waits until none is listed: a
 * stop is answered at once, and an instance stays in the list until it has ended (a VM tearing
 * down, a container given its stop timeout), which the dashboard would show.
 */
async function stopAll(): Promise<void> {
  for (const r of running()) tsvmm(['stop', r.name, '--timeout', '0']);
  const deadline = Date.now() + 30_000;
  for (let left = running(); left.length; left = running()) {
    if (Date.now() > deadline) throw new Error(`still running 30 s after stop: ${left.map((r) => r.name).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
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
  const row = lines.findLastIndex((l) => l.includes(text));
  if (row < 0) throw new Error(`no ${text} on the screen:\n${lines.join('\n')}`);
  const column = [...lines[row]!.slice(0, lines[row]!.indexOf(text))].length + 2;
  session.type(`\x1b[<0;${column};${row + 1}M`);
  await new Promise((r) => setTimeout(r, 50));
  session.type(`\x1b[<0;${column};${row + 1}m`);
}

/** A table row: name, kind, state, CPUs, memory used (MiB or GiB, or - before it is known). */
const rowOf = (name: string, kind: string, state: string) => new RegExp(`${name.replace(/[.]/g, '\\.')}\\s+${kind}\\s+${state}\\s+[\\d.]+\\s+([\\d.]+ [KMG]iB|-)`);

/**
 * What must hold at any size: the screen is the terminal's size, the table's heading has every
 * column whole, the console box has at least `consoleRows` rows, the button row holds buttons only.
 */
function checkFits(screen: string, width: number, height: number, consoleRows = 4): void {
  const lines = screen.replace(/\n$/, '').split('\n');
  expect(lines).toHaveLength(height);
  for (const line of lines) expect([...line].length).toBeLessThanOrEqual(width);
  expect(screen).toMatch(/│ NAME\s+KIND\s+STATE\s+CPUS\s+MEMORY\s+(LIMIT\s+)?CPU%\s+EXITS\/S\s+UPTIME(\s+PID)?\s*│/);
  const top = lines.findIndex((l) => /^┌─ console/.test(l));
  expect(top, screen).toBeGreaterThan(0);
  const bottom = lines.findIndex((l, i) => i > top && l.startsWith('└'));
  expect(bottom - top - 1, screen).toBeGreaterThanOrEqual(consoleRows);
  const buttons = lines[height - 2]!;
  expect(buttons).toMatch(/^ ?\[b boot\]/);
  expect(buttons).toContain('[? help]');
  expect(buttons.replace(/\[[^\]]+\]/g, '').trim(), screen).toBe('');
}

describe.skipIf(kvmMissingReason ?? tmuxMissingReason)('tsvmm dashboard on a terminal', () => {
  // The runtime directory vitest gives this run, so that the dashboard sees what the tests start.
  const runtimeDir = process.env.TSVMM_RUNTIME_DIR!;
  const work = mkdtempSync(path.join(tmpdir(), 'tsvmm-dashboard-'));
  let session: TmuxSession;
  let vm = '';
  let size = { width: 80, height: 24 };
  const resize = (width: number, height: number) => {
    size = { width, height };
    session.resize(width, height);
  };
  /**
   * Waits for `pattern` on a screen that fits the terminal's current size (checkFits); a screen
   * caught in the middle of a redraw is read again.
   */
  const see = async (pattern: string | RegExp, timeoutMs = 20_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = await session.waitFor(pattern, Math.max(100, deadline - Date.now()));
      try {
        checkFits(screen, size.width, size.height);
        return screen;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    expect(runtimeDir).toBeTruthy();
    await stopAll();
    // The latest `tsvmm compare` results the side-by-side view shows: a report of this machine
    // kept as a fixture (docs/ holds the newest example, which changes).
    const results = path.join(work, 'compare-latest.json');
    copyFileSync('test/fixtures/compare-report.json', results);
    session = new TmuxSession(`TSVMM_RUNTIME_DIR=${runtimeDir} TSVMM_COMPARE_RESULTS=${results} node bin/tsvmm.js dashboard`, process.cwd(), size);
  });

  afterAll(async () => {
    session?.kill();
    // What the dashboard started runs on without it: stop whatever a failed step left.
    await stopAll();
  });

  it('says what to do when nothing runs, every column whole at 80x24', async () => {
    // At 80 columns the message takes two lines of the table.
    const screen = await see(/No VMs or containers are running\. Press b to boot the demo guest or c to\s+│\n│ start a container\./);
    expect(screen).toContain('tsvmm dashboard');
  });

  it('boots the demo guest on b and lists it as running, with its memory used, console and charts, at 80x24', async () => {
    session.type('b');
    const screen = await see(/vm-[0-9a-f]{6}\s+vm\s+running/, 30_000);
    vm = /(vm-[0-9a-f]{6})\s+vm\s+running/.exec(screen)![1]!;
    expect(screen).toMatch(rowOf(vm, 'vm', 'running'));
    expect(screen).not.toContain('No VMs or containers are running');
    await see(`console: ${vm} (Enter to type)`);
    await see('hello: type something and I echo it');
    // Two polls give rates: every column of the row has a value, EXITS/S and UPTIME included.
    const row = await see(new RegExp(`${vm}\\s+vm\\s+running\\s+1\\s+[\\d.]+ MiB\\s+[\\d.]+\\s+[\\d.k]+\\s+\\d+s\\s*│`));
    // Memory is what the VMM process uses on the host (PSS), not the guest's 256 MiB of RAM.
    const used = new RegExp(`${vm}\\s+vm\\s+running\\s+1\\s+([\\d.]+) MiB`).exec(row)![1]!;
    expect(Number(used)).toBeLessThan(256);
    const charts = await see(/exits\/s\s+[\d.k]+\s+[▁▂▃▄▅▆▇█]+ 0-\d+k?\/s/);
    expect(charts).toMatch(/CPU %\s+[\d.]+\s+[▁▂▃▄▅▆▇█]+ 0-\d+%/);
    expect(charts).toMatch(/[\d.]+ MiB used \(PSS\), RAM 256 MiB, 1 vCPU/);
    expect(charts).toMatch(/\d+ s ago\s+now/);
    expect(running()).toEqual([expect.objectContaining({ name: vm, kind: 'vm', state: 'running' })]);
  });

  it('types into the console after Enter and shows the guest echo; Ctrl-A X leaves it (80x24)', async () => {
    session.keys('Enter');
    await see('Ctrl-A X or Esc leaves');
    session.type('hello dashboard');
    await see('> hello dashboard');
    session.keys('Enter');
    await see('hello: you typed "hello dashboard" (15 characters)');
    session.keys('C-a', 'x');
    await see(`console: ${vm} (Enter to type)`);
  });

  it('scrolls the help at 80x24 to its last key, and any other key closes it', async () => {
    session.type('?');
    const first = await session.waitFor(/keys 1-\d+ of \d+/);
    expect(first).toContain('Up/Down scroll; any other key closes');
    expect(first).not.toContain('q, F10, Ctrl-C');
    session.keys('End');
    const last = await session.waitFor('q, F10, Ctrl-C');
    expect(last).toContain('quit (VMs and containers keep running)');
    session.type(' ');
    await waitGone(session, /any other key closes/);
    checkFits(session.screen(), 80, 24);
  });

  it('follows a resize to 120x40: the limit and pid columns appear, the console grows', async () => {
    resize(120, 40);
    const screen = await see(/MEMORY\s+LIMIT\s+CPU%\s+EXITS\/S\s+UPTIME\s+PID/);
    expect(screen).toMatch(new RegExp(`${vm}\\s+vm\\s+running\\s+1\\s+[\\d.]+ MiB\\s+256 MiB\\s+`));
    expect(screen).toContain('hello: type something and I echo it');
    checkFits(screen, 120, 40, 15);
    for (const b of ['[b boot]', '[c container]', '[p pause]', '[s stop]', '[S snapshot]', '[R restore]', '[Enter console]', '[v side by side]', '[/ filter]', '[? help]']) {
      expect(screen).toContain(b);
    }
  });

  it('pauses and resumes the VM with p', async () => {
    session.type('p');
    await see(rowOf(vm, 'vm', 'paused'));
    await see(`${vm}: paused`);
    expect(running()).toEqual([expect.objectContaining({ name: vm, state: 'paused' })]);
    session.type('p');
    await see(rowOf(vm, 'vm', 'running'));
    await see(`${vm}: running`);
  });

  it('snapshots the VM with S, restores it with R; s stops the restored one, which stays a while as ended', async () => {
    const file = path.join(work, 'dash.snap');
    session.type('S');
    await see(`snapshot ${vm}`);
    await see(`${vm}.snap_`);
    session.keys('C-u');
    session.type(file);
    session.keys('Enter');
    await see(`saved ${vm} to ${file}`, 30_000);
    expect(existsSync(file)).toBe(true);
    // The VM goes on after the save.
    await see(rowOf(vm, 'vm', 'running'));

    session.type('R');
    await see('restore a VM from a snapshot');
    session.type(file);
    session.keys('Enter');
    const screen = await see(/restored (vm-[0-9a-f]{6})/, 30_000);
    const restored = /restored (vm-[0-9a-f]{6})/.exec(screen)![1]!;
    expect(restored).not.toBe(vm);
    await see(rowOf(restored, 'vm', 'running'));
    // The restored guest is the saved one, waiting at its prompt: it still answers on its console.
    await see(`console: ${restored} (Enter to type)`);
    session.keys('Enter');
    await see('Ctrl-A X or Esc leaves');
    session.type('again');
    session.keys('Enter');
    await see('hello: you typed "again" (5 characters)');
    session.keys('Escape');
    await see(`console: ${restored} (Enter to type)`);
    expect(running().map((r) => r.name).sort()).toEqual([vm, restored].sort());

    // The keys that moved say where they went, and do nothing else.
    session.type('d');
    await see('stop is s now');
    // s asks first, n keeps it, y stops it: it stays in the table as ended, saying how.
    session.type('s');
    await see(`Stop VM ${restored}? (y/n)`);
    session.type('n');
    await waitGone(session, /\(y\/n\)/);
    expect(session.screen()).toMatch(rowOf(restored, 'vm', 'running'));
    session.type('s');
    await see(`Stop VM ${restored}? (y/n)`);
    session.type('y');
    const ended = await see(new RegExp(`${restored}\\s+vm\\s+ended`), 30_000);
    expect(ended).toContain(`${restored} (vm, ended): stopped`);
    expect(ended).toContain(`(console closed: ${restored} ended)`);
    expect(running().map((r) => r.name)).toEqual([vm]);
    // e hides the ones that ended (lazydocker's key for stopped containers); e again shows them.
    session.type('e');
    await waitGone(session, new RegExp(`${restored}\\s+vm`));
    await see('ended hidden (e)');
    session.type('e');
    await see(new RegExp(`${restored}\\s+vm\\s+ended`));
  });

  it('filters with / and sorts with M and <, >, saying so on the table', async () => {
    session.keys('Home');
    session.type('/');
    await see('filter: _');
    session.type('vm-');
    await see('filter "vm-": 2 of 2');
    session.type(vm.slice(3));
    await see(`filter "${vm}": 1 of 2`);
    session.type('zz');
    await see('Nothing matches the filter');
    session.keys('Escape');
    await waitGone(session, /filter "/);
    await see(rowOf(vm, 'vm', 'running'));
    session.type('M');
    await see('sorted by memory ↓');
    session.type('I');
    await see('sorted by memory ↑');
    session.type('<');
    await see('sorted by CPU% ↓');
    session.type('>>');
    await see('sorted by uptime ↓');
    session.keys('F6');
    await see('sorted by exits/s ↓');
    // Back to the order they started in (F6 goes round).
    session.keys('F6');
    await waitGone(session, /· sorted by/);
  });

  it.skipIf(containerMissingReason)('starts a busybox container with c and shows it beside the VM with v, at 120x40 and 80x24', async () => {
    session.type('c');
    await see('start a container');
    expect(session.screen()).toContain('.cache/busybox-bundle/rootfs');
    session.keys('Enter');
    const screen = await see(/(ctr-[0-9a-f]{6})\s+container\s+running/, 30_000);
    const ctr = /(ctr-[0-9a-f]{6})\s+container\s+running/.exec(screen)![1]!;
    expect(screen).toMatch(rowOf(vm, 'vm', 'running'));
    // Its memory is its cgroup's charge; without a limit, LIMIT says none (not the host's memory).
    await see(new RegExp(`${ctr}\\s+container\\s+running\\s+\\d+\\s+[\\d.]+ [KM]iB\\s+none\\s`));
    session.type('v');
    const side = await see('─ side by side ');
    expect(side).toContain(`${vm} (vm, running)`);
    expect(side).toContain(`${ctr} (container, running)`);
    expect(side).toContain('none for containers (no VM)');
    expect(side).not.toMatch(/exits 0/);
    // Both panes' time axes end at "now" in the same column of each pane.
    const axis = side.split('\n').find((l) => /s ago.*now.*s ago.*now/.test(l))!;
    expect(axis.lastIndexOf('now') - axis.indexOf('now')).toBe(60);
    // Its console is the container's sh.
    await see(`console: ${ctr} (Enter to type)`);
    session.keys('Enter');
    await see('Ctrl-A X or Esc leaves');
    // It has a pty: the line discipline inside echoes, Backspace erases, Enter ends the line.
    session.type('echo from-the-$((6*7))-containerXY');
    session.keys('BSpace', 'BSpace', 'Enter');
    await see(/│from-the-42-container\s*│/);
    expect(session.screen()).not.toMatch(/-containerX[^Y]|\^\?/);
    // Ctrl-C is SIGINT for the foreground job, not a byte: the shell is back long before 60 s.
    session.type('sleep 60');
    session.keys('Enter');
    await new Promise((r) => setTimeout(r, 500));
    session.keys('C-c');
    session.type('echo after-$((1+1))-interrupt');
    session.keys('Enter');
    await see('after-2-interrupt', 10_000);
    session.keys('C-a', 'x');
    await see(`console: ${ctr} (Enter to type)`);

    // Side by side at 80x24: the two panes, the console with rows, what of the comparison fits.
    resize(80, 24);
    const small = await see(/a terminal of \d+ rows shows them all/);
    expect(small).toContain(`${ctr} (container, running)`);
    expect(small).toContain(`console: ${ctr}`);
    resize(120, 40);
    await see('─ VM vs container on this machine ');
    session.type('v');
    await waitGone(session, /─ side by side /);

    // A stop takes a while (sh ignores SIGTERM; SIGKILL follows after 10 s): it says stopping.
    session.type('s');
    await see(`Stop container ${ctr}? (y/n)`);
    session.type('y');
    await see(rowOf(ctr, 'container', 'stopping'));
    const ended = await see(new RegExp(`${ctr}\\s+container\\s+ended`), 30_000);
    expect(ended).toMatch(new RegExp(`${ctr} \\(container, ended\\): stopped`));
  });

  it('does with a mouse click on a button what the key does: help, pause/resume, side by side, boot', async () => {
    await click(session, '[? help]');
    await see('any other key closes');
    // A click over the help closes it, as a key does.
    await click(session, '[? help]');
    await waitGone(session, /any other key closes/);

    session.keys('Home');
    await see(new RegExp(`│ ${vm}`));
    await click(session, '[p pause]');
    await see(rowOf(vm, 'vm', 'paused'));
    await click(session, '[p pause]');
    await see(rowOf(vm, 'vm', 'running'));

    // Side by side: the two live ones, and under them the latest comparison's medians.
    await click(session, '[v side by side]');
    const side = await see('─ side by side ');
    expect(side).toContain('─ VM vs container on this machine ');
    expect(side).toContain('latest tsvmm compare, 2026-11-23 on vm, 7 runs each');
    expect(side).toMatch(/Start latency\s+ms\s+71\.1\s+×27\s+22\.8\s+×8\.67\s+2\.63/);
    // The console pane moves down under it and still shows the VM.
    expect(side).toContain(`console: ${vm} (Enter to type)`);
    await click(session, '[v side by side]');
    await waitGone(session, /─ side by side /);
    expect(session.screen()).not.toContain('VM vs container on this machine');

    await click(session, '[b boot]');
    const screen = await see(/booted (vm-[0-9a-f]{6})/, 30_000);
    const second = /booted (vm-[0-9a-f]{6})/.exec(screen)![1]!;
    await see(rowOf(second, 'vm', 'running'));
    await click(session, '[s stop]');
    await see(`Stop VM ${second}? (y/n)`);
    session.type('y');
    await see(new RegExp(`${second}\\s+vm\\s+ended`), 30_000);
    expect(running().map((r) => r.name)).toEqual([vm]);
  });

  it('shows how a guest that shut down itself ended; with ended ones hidden, the empty message returns', async () => {
    session.keys('Home');
    await see(`console: ${vm} (Enter to type)`);
    session.keys('Enter');
    await see('Ctrl-A X or Esc leaves');
    session.type('exit');
    session.keys('Enter');
    await see(new RegExp(`${vm}\\s+vm\\s+ended`), 30_000);
    await see(new RegExp(`${vm} \\(vm, ended\\): guest`));
    expect(session.screen()).toMatch(/0 instances, 0 running/);
    expect(running()).toEqual([]);
    session.type('e');
    await see('No VMs or containers are running');
  });

  it('quits on q and leaves the terminal in cooked mode; what it started runs on', async () => {
    session.type('b');
    const screen = await see(/vm-[0-9a-f]{6}\s+vm\s+running/, 30_000);
    const name = /(vm-[0-9a-f]{6})\s+vm\s+running/.exec(screen)![1]!;
    session.type('q');
    await session.waitFor('[exit=0]');
    expect(await session.waitFor('[tty:')).toContain('[tty: icanon echo ]');
    expect(running()).toEqual([expect.objectContaining({ name, state: 'running' })]);
    expect(tsvmm(['stop', name]).code).toBe(0);
  });
});

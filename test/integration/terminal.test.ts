// tsvmm on a real terminal: raw mode, echo from the guest, Ctrl-A X and H, and a sane terminal after.

import { afterEach, describe, expect, it } from 'vitest';
import { kvmMissingReason } from '../helpers/kvm.js';
import { TmuxSession, tmuxMissingReason } from '../helpers/tmux.js';
import { tsvmm } from '../helpers/cli.js';
import { listInstances, runtimeDir } from '../../src/api/runtime-dir.js';

describe.skipIf(kvmMissingReason ?? tmuxMissingReason)('tsvmm run on a terminal', () => {
  let session: TmuxSession | undefined;
  afterEach(() => session?.kill());

  it('puts the terminal in raw mode, echoes through the guest and quits on Ctrl-A X', async () => {
    session = new TmuxSession('node bin/tsvmm.js run --mem 64M', process.cwd());
    await session.waitFor('type something');
    expect(session.screen()).toContain('Ctrl-A X quits');
    session.type('raw mode works');
    // Typed characters appear only because the guest echoes them: the terminal's own echo is off.
    await session.waitFor('> raw mode works');
    session.keys('Enter');
    await session.waitFor('you typed "raw mode works"');
    session.keys('C-a', 'x');
    const screen = await session.waitFor('[exit=0]');
    expect(screen).toMatch(/tsvmm: stopped after/);
    // The terminal is back in cooked mode: line editing and echo on.
    expect(await session.waitFor('[tty:')).toContain('[tty: icanon echo ]');
  });

  it('lets Ctrl-C through to the guest instead of killing the VMM', async () => {
    session = new TmuxSession('node bin/tsvmm.js run --mem 64M', process.cwd());
    await session.waitFor('type something');
    session.type('abc');
    session.keys('C-c');
    await session.waitFor('^C');
    session.type('exit');
    session.keys('Enter');
    await session.waitFor('[exit=0]');
    expect(session.screen()).toContain('goodbye');
  });

  it('tsvmm console: Ctrl-A H shows the keys, Ctrl-A X detaches and the VM goes on', async () => {
    const name = `term-console-${process.pid}`;
    expect(tsvmm(['run', '--detach', '--name', name, '--mem', '64M']).code).toBe(0);
    try {
      session = new TmuxSession(`TSVMM_RUNTIME_DIR=${runtimeDir()} node bin/tsvmm.js console ${name}`, process.cwd());
      await session.waitFor(`attached to ${name}`);
      session.keys('C-a', 'h');
      const help = await session.waitFor('C-a h    this help');
      expect(help).toContain('C-a x    detach (it goes on running');
      session.keys('C-a', 'x');
      await session.waitFor(`detached from ${name}`);
      expect(listInstances().some((r) => r.name === name)).toBe(true);
    } finally {
      tsvmm(['stop', name]);
    }
  });
});

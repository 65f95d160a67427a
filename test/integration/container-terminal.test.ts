// A container never shares the caller's session or terminal (issue 11): run from a terminal it
// gets a pty of its own, relayed by tsvmm; without one, pipes. A static probe inside tries the
// classic escape, TIOCSTI (push characters into a terminal's input, which the host shell would
// then run), on each of its stdio descriptors and on /dev/tty. Driven through tmux, on a real
// terminal, with a real shell waiting to run whatever reaches it.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileStaticC } from '../helpers/c-program.js';
import { containerMissingReason, ROOTFS } from '../helpers/container-rootfs.js';
import { tmuxMissingReason, TmuxSession } from '../helpers/tmux.js';

const PROBE = String.raw`
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

// Pushes the command given as argv[1] into the input of each terminal we can reach.
static void inject(int fd, const char *name, const char *text) {
  if (!isatty(fd)) {
    printf("probe: %s: not a terminal\n", name);
    return;
  }
  for (const char *c = text; *c; c++) {
    if (ioctl(fd, TIOCSTI, c) < 0) {
      printf("probe: %s: TIOCSTI failed: %s\n", name, strerror(errno));
      return;
    }
  }
  printf("probe: %s: TIOCSTI succeeded (%s)\n", name, ttyname(fd) ? ttyname(fd) : "?");
}

int main(int argc, char **argv) {
  char text[512];
  snprintf(text, sizeof text, "%s\n", argc > 1 ? argv[1] : "true");
  printf("probe: pid %d, session %d, stdin %s\n", (int)getpid(), (int)getsid(0), isatty(0) ? ttyname(0) : "not a terminal");
  fflush(stdout);
  inject(0, "stdin", text);
  inject(1, "stdout", text);
  inject(2, "stderr", text);
  int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
  if (tty < 0) printf("probe: /dev/tty: %s\n", strerror(errno));
  else inject(tty, "/dev/tty", text);
  // Whatever went into a terminal of our own is ours to read back; the host never sees it.
  if (isatty(0)) {
    struct termios t;
    tcgetattr(0, &t);
    t.c_lflag &= ~ECHO;
    tcsetattr(0, TCSANOW, &t);
    fcntl(0, F_SETFL, O_NONBLOCK);
    char back[2048];
    ssize_t n = read(0, back, sizeof back - 1);
    if (n > 0) {
      back[n] = 0;
      back[strcspn(back, "\n")] = 0;
      printf("probe: read back from my own terminal: %s\n", back);
    }
  }
  printf("probe: done\n");
  return 0;
}
`;

const reason = containerMissingReason ?? tmuxMissingReason;

describe.skipIf(reason)('a container and the caller\'s terminal', () => {
  let layer: string;
  const sessions: TmuxSession[] = [];
  beforeAll(() => {
    layer = mkdtempSync(path.join(tmpdir(), 'tsvmm-probe-'));
    compileStaticC(PROBE, path.join(layer, 'probe'));
  });
  afterAll(() => {
    for (const s of sessions) s.kill();
    rmSync(layer, { recursive: true, force: true });
  });

  /** A shell on a real terminal that runs whatever reaches its input, which types `command`. */
  function shellRunning(command: string): TmuxSession {
    const session = new TmuxSession('sh', process.cwd(), { width: 160, height: 40 });
    sessions.push(session);
    session.type(`${command}; echo "[exit=$?]"`);
    session.keys('Enter');
    return session;
  }

  async function terminalModes(session: TmuxSession): Promise<string> {
    session.type(`echo "[tty: $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' ')]"`);
    session.keys('Enter');
    const answer = /^\[tty: ([-a-z ]*)\]$/m;
    return answer.exec(await session.waitFor(answer))![1]!.trim();
  }

  it('with a terminal on stdin: a pty and a session of its own; TIOCSTI reaches only that pty, nothing runs on the host', async () => {
    const marker = path.join(tmpdir(), `tsvmm-tiocsti-${process.pid}-pty`);
    rmSync(marker, { force: true });
    const session = shellRunning(`node bin/tsvmm.js container run --rootfs ${ROOTFS} --layer ${layer} -- /probe 'touch ${marker}'`);
    const screen = await session.waitFor(/\[exit=\d+\]/, 30_000);
    // The shell waiting on the caller's terminal got nothing to run.
    await new Promise((r) => setTimeout(r, 1000));
    expect(existsSync(marker)).toBe(false);
    expect(screen).toContain('[exit=0]');
    // pid 1 of its namespace leads its own session, on a pty of the container's devpts.
    expect(screen).toMatch(/probe: pid 1, session 1, stdin \/dev\/pts\/0/);
    expect(screen).toMatch(/probe: stdin: TIOCSTI succeeded \(\/dev\/pts\/0\)/);
    expect(screen).toContain(`probe: read back from my own terminal: touch ${marker}`);
    // And that terminal is back in cooked mode.
    expect(await terminalModes(session)).toBe('icanon echo');
    expect(existsSync(marker)).toBe(false);
  });

  it('without a terminal on stdin: pipes, so TIOCSTI fails everywhere and /dev/tty is no terminal of the caller', async () => {
    const marker = path.join(tmpdir(), `tsvmm-tiocsti-${process.pid}-pipes`);
    rmSync(marker, { force: true });
    // stdout and stderr are still the caller's terminal: the container must get pipes instead.
    const session = shellRunning(`node bin/tsvmm.js container run --rootfs ${ROOTFS} --layer ${layer} -- /probe 'touch ${marker}' < /dev/null`);
    const screen = await session.waitFor(/\[exit=\d+\]/, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(existsSync(marker)).toBe(false);
    expect(screen).toContain('[exit=0]');
    expect(screen).toMatch(/probe: pid 1, session 1, stdin not a terminal/);
    expect(screen).toContain('probe: stdin: not a terminal');
    expect(screen).toContain('probe: stdout: not a terminal');
    expect(screen).toContain('probe: stderr: not a terminal');
    expect(screen).toMatch(/probe: \/dev\/tty: No such device or address/);
    expect(screen).not.toContain('succeeded');
  });
});

function tsvmm(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(reason)('a detached container with a pty, through tsvmm console', () => {
  const name = `ctr-tty-${process.pid}`;
  let session: TmuxSession | undefined;
  afterAll(async () => {
    session?.kill();
    tsvmm(['stop', name, '--timeout', '0']);
    const listed = () => (JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string }[]).some((r) => r.name === name);
    for (let i = 0; i < 100 && listed(); i++) await new Promise((r) => setTimeout(r, 100));
  });

  it('echoes, edits lines, makes Ctrl-C a SIGINT and follows the window size; Ctrl-A X detaches', async () => {
    const started = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--name', name, '--detach', '--tty', '--', 'sh']);
    expect(started.code, started.stderr).toBe(0);
    session = new TmuxSession(`node bin/tsvmm.js console ${name}`, process.cwd(), { width: 100, height: 30 });
    await session.waitFor(`attached to ${name}`);
    // Echo and Backspace come from the pty's line discipline; Enter is a newline there.
    session.type('echo hel-XY');
    session.keys('BSpace', 'BSpace', 'BSpace');
    session.type('lo-$((2*3))');
    session.keys('Enter');
    await session.waitFor(/^hello-6\s*$/m);
    expect(session.screen()).not.toMatch(/not found|\^\?/);
    // The size of the terminal that attached, then each change of it.
    session.type('stty size');
    session.keys('Enter');
    await session.waitFor(/^30 100\s*$/m);
    session.resize(90, 20);
    await new Promise((r) => setTimeout(r, 500));
    session.type('stty size');
    session.keys('Enter');
    await session.waitFor(/^20 90\s*$/m);
    // Ctrl-C interrupts the foreground job inside; the shell answers long before 60 s.
    session.type('sleep 60');
    session.keys('Enter');
    await new Promise((r) => setTimeout(r, 500));
    session.keys('C-c');
    session.type('echo after-$((1+1))');
    session.keys('Enter');
    await session.waitFor(/^after-2\s*$/m, 10_000);
    session.keys('C-a', 'x');
    await session.waitFor('[exit=0]');
    // Detaching left it running.
    expect(JSON.parse(tsvmm(['ps', '--json']).stdout).find((r: { name: string }) => r.name === name)).toMatchObject({ state: 'running' });
  });
});

describe.skipIf(containerMissingReason)('stopping a container in the foreground', () => {
  it('a second Ctrl-C does not wait for the first one\'s timeout', async () => {
    // pid 1 of a namespace ignores SIGTERM unless it handles it: the first stop waits 60 s.
    const child = spawn(process.execPath, ['bin/tsvmm.js', 'container', 'run', '--rootfs', ROOTFS, '--stop-timeout', '60', '--',
      'sh', '-c', 'echo ready; while :; do sleep 1; done'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); }));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const start = performance.now();
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const code = await exited;
    expect(performance.now() - start).toBeLessThan(15_000);
    expect(code).toBe(137); // SIGKILL
  }, 70_000);

  it('tsvmm stop --timeout 0 after a plain stop kills at once: the shorter timeout wins', async () => {
    const name = `ctr-stop-${process.pid}`;
    const started = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--name', name, '--detach', '--stop-timeout', '60', '--', 'sh', '-c', 'while :; do sleep 1; done']);
    expect(started.code, started.stderr).toBe(0);
    const listed = () => (JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string }[]).some((r) => r.name === name);
    expect(tsvmm(['stop', name])).toMatchObject({ code: 0, stdout: `${name}: stopping\n` });
    await new Promise((r) => setTimeout(r, 1000));
    expect(listed()).toBe(true); // its init ignores SIGTERM: 60 s to go
    const start = performance.now();
    expect(tsvmm(['stop', name, '--timeout', '0']).code).toBe(0);
    await expect.poll(listed, { timeout: 15_000 }).toBe(false);
    expect(performance.now() - start).toBeLessThan(15_000);
  }, 70_000);
});

// Drives a program on a real pseudo-terminal through tmux: type keys, read the screen.

import { execFileSync, spawnSync } from 'node:child_process';

export const tmuxMissingReason: string | undefined =
  spawnSync('tmux', ['-V']).status === 0 ? undefined : 'tmux is not installed: terminal tests skipped (scripts/ensure-test-deps.sh installs it)';

export class TmuxSession {
  readonly name = `tsvmm-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(command: string, cwd: string, size = { width: 120, height: 40 }) {
    execFileSync('tmux', ['new-session', '-d', '-s', this.name, '-x', String(size.width), '-y', String(size.height), '-c', cwd,
      // After the program: its exit code, and whether the terminal is back in cooked mode.
      `${command}; echo "[exit=$?]"; echo "[tty: $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' ')]"; sleep 60`]);
  }

  /** Makes the terminal this size: the program gets SIGWINCH, as in a window a person resizes. */
  resize(width: number, height: number): void {
    execFileSync('tmux', ['resize-window', '-t', this.name, '-x', String(width), '-y', String(height)]);
  }

  keys(...keys: string[]): void {
    execFileSync('tmux', ['send-keys', '-t', this.name, ...keys]);
  }

  /** Types text literally (no key-name interpretation). */
  type(text: string): void {
    execFileSync('tmux', ['send-keys', '-t', this.name, '-l', text]);
  }

  /** Resizes the terminal, as a person dragging the window would (the program gets SIGWINCH). */
  resize(width: number, height: number): void {
    execFileSync('tmux', ['resize-window', '-t', this.name, '-x', String(width), '-y', String(height)]);
  }

  screen(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-t', this.name], { encoding: 'utf8' });
  }

  async waitFor(pattern: string | RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (typeof pattern === 'string' ? screen.includes(pattern) : pattern.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`screen never showed ${String(pattern)}:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill(): void {
    spawnSync('tmux', ['kill-session', '-t', this.name]);
  }
}

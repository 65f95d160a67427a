// Drives a program on a real pseudo-terminal through tmux: type keys, read the screen.

import { execFileSync, spawnSync } from 'node:child_process';

export const tmuxMissingReason: string | undefined =
  spawnSync('tmux', ['-V']).status === 0 ? undefined : 'tmux is not installed: terminal tests skipped (scripts/ensure-test-deps.sh installs it)';

/**
 * A program in a tmux server of its own (`-L NAME`): a server shared with other test runs would
 * give our session its global environment (TSVMM_RUNTIME_DIR among it) and theirs ours.
 */
export class TmuxSession {
  readonly name = `tsvmm-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  #tmux(args: string[], encoding?: 'utf8'): string {
    return execFileSync('tmux', ['-L', this.name, ...args], encoding ? { encoding } : {}).toString();
  }

  constructor(command: string, cwd: string, size = { width: 120, height: 40 }) {
    this.#tmux(['new-session', '-d', '-s', this.name, '-x', String(size.width), '-y', String(size.height), '-c', cwd,
      // After the program: its exit code, and whether the terminal is back in cooked mode.
      `${command}; echo "[exit=$?]"; echo "[tty: $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' ')]"; sleep 60`]);
  }

  /** Makes the terminal this size: the program gets SIGWINCH, as in a window a person resizes. */
  resize(width: number, height: number): void {
    this.#tmux(['resize-window', '-t', this.name, '-x', String(width), '-y', String(height)]);
  }

  keys(...keys: string[]): void {
    this.#tmux(['send-keys', '-t', this.name, ...keys]);
  }

  /** Types text literally (no key-name interpretation). */
  type(text: string): void {
    this.#tmux(['send-keys', '-t', this.name, '-l', text]);
  }

  screen(): string {
    return this.#tmux(['capture-pane', '-p', '-t', this.name], 'utf8');
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
    spawnSync('tmux', ['-L', this.name, 'kill-server']);
  }
}

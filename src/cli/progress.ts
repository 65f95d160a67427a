// A progress bar on stderr for long saves and restores: shown only if the work takes longer
// than half a second, and only on a terminal.

export class ProgressBar {
  readonly #started = performance.now();
  #shown = false;

  constructor(private readonly label: string, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(done: number, total: number): void {
    if (!this.stream.isTTY || performance.now() - this.#started < 500 || total <= 0) return;
    this.#shown = true;
    const width = 30;
    const fraction = Math.min(1, done / total);
    const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.');
    const mib = (n: number) => (n / 2 ** 20).toFixed(0);
    this.stream.write(`\r${this.label} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)} MiB`);
  }

  done(): void {
    if (this.#shown) this.stream.write('\n');
  }
}

// runc's logging: with --log FILE, one line per message in the file, as logrus writes it
// (--log-format json: {"level","msg","time"}; text: time=… level=… msg=…); engines read the
// last error from there. Errors also go to stderr as a plain line, as runc prints them.

import { appendFileSync } from 'node:fs';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

export class Log {
  /** `stderr`: the caller's (the warm server writes to the fd its request brought). */
  constructor(readonly file: string | undefined, readonly format: LogFormat, readonly debugging: boolean,
    readonly stderr: (text: string) => void = (text) => { process.stderr.write(text); }) {}

  #write(level: LogLevel, msg: string): void {
    const time = new Date().toISOString();
    const line = this.format === 'json'
      ? JSON.stringify({ level, msg, time })
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    if (!this.file) {
      // No log file: debug and warnings go to stderr, as logrus sends them there.
      this.stderr(`${line}\n`);
      return;
    }
    try {
      appendFileSync(this.file, `${line}\n`);
    } catch { /* a log we cannot write must not hide the error itself, which stderr carries */ }
  }

  debug(msg: string): void {
    if (this.debugging) this.#write('debug', msg);
  }

  warn(msg: string): void {
    this.#write('warning', msg);
  }

  /** Without --log, the error is the one line on stderr (JSON with --log-format json). */
  error(msg: string): void {
    if (!this.file && this.format === 'text') {
      this.stderr(`${msg}\n`);
      return;
    }
    this.#write('error', msg);
    if (this.file) this.stderr(`${msg}\n`);
  }
}

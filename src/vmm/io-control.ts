// What the main thread and the device I/O thread share without messages: the command the thread
// should obey, how many pauses were asked for (so that pause, resume, pause in quick succession is
// still answered twice), the thread's id (to kick it out of epoll_wait when the process ends),
// and a counter of device faults. The I/O thread's counterpart of VcpuControl.

export const IoCommand = { Run: 0, Stop: 1, Pause: 2 } as const;
export type IoCommand = (typeof IoCommand)[keyof typeof IoCommand];

const COMMAND = 0;
const PAUSES_ASKED = 1;
const INTS = 2;
const THREAD_AT = 8;
const FAULTS_AT = 16;
const BYTES = 24;

export class IoControl {
  readonly buffer: SharedArrayBuffer;
  readonly #ints: Int32Array;
  readonly #thread: BigInt64Array;
  readonly #faults: Float64Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#ints = new Int32Array(buffer, 0, INTS);
    this.#thread = new BigInt64Array(buffer, THREAD_AT, 1);
    this.#faults = new Float64Array(buffer, FAULTS_AT, 1);
  }

  static create(): IoControl {
    return new IoControl(new SharedArrayBuffer(BYTES));
  }

  static attach(buffer: SharedArrayBuffer): IoControl {
    return new IoControl(buffer);
  }

  get command(): IoCommand {
    return Atomics.load(this.#ints, COMMAND) as IoCommand;
  }

  /** Sets the command and wakes a thread sleeping in waitWhilePaused. */
  set command(command: IoCommand) {
    Atomics.store(this.#ints, COMMAND, command);
    Atomics.notify(this.#ints, COMMAND);
  }

  /** Asks for a pause; counted, so that each one asked is answered. */
  requestPause(): void {
    Atomics.add(this.#ints, PAUSES_ASKED, 1);
    this.command = IoCommand.Pause;
  }

  get pausesAsked(): number {
    return Atomics.load(this.#ints, PAUSES_ASKED);
  }

  /** Sleeps while the command is Pause, at most `timeoutMs`. */
  waitWhilePaused(timeoutMs: number): void {
    Atomics.wait(this.#ints, COMMAND, IoCommand.Pause, timeoutMs);
  }

  /** The I/O thread's pthread id, 0 until it has started. */
  get thread(): bigint {
    return Atomics.load(this.#thread, 0);
  }

  set thread(id: bigint) {
    Atomics.store(this.#thread, 0, id);
  }

  /** Device faults the I/O thread caught; only that thread writes it. */
  get faults(): number {
    return this.#faults[0]!;
  }

  set faults(n: number) {
    this.#faults[0] = n;
  }
}

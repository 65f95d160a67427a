// What the main thread and a vCPU thread share without messages: the command the vCPU should
// obey, the state it reports, its thread id (so it can be kicked out of KVM_RUN) and counters.

export const VcpuCommand = { Run: 0, Pause: 1, Stop: 2 } as const;
export type VcpuCommand = (typeof VcpuCommand)[keyof typeof VcpuCommand];

export const VcpuState = { Starting: 0, Running: 1, Paused: 2, Exited: 3 } as const;
export type VcpuState = (typeof VcpuState)[keyof typeof VcpuState];

const COMMAND = 0;
/** How often a paused vCPU thread looks for work even without a poke. */
const PAUSED_RECHECK_MS = 50;
const STATE = 1;
/** A request to a paused vCPU thread besides its command: see VcpuRequest. */
const REQUEST = 2;
/** Set when the VM is ending in a crash: the thread reports its vCPU's state as it exits. */
const DUMP_ON_EXIT = 3;
const INTS = 4;

/** What a paused boot CPU's thread can be asked to do for a snapshot. */
export const VcpuRequest = { None: 0, SaveDevices: 1 } as const;
export type VcpuRequest = (typeof VcpuRequest)[keyof typeof VcpuRequest];

/** Counters the vCPU thread increments; readers may see them a little stale. */
export const COUNTERS = ['exits', 'io', 'mmio', 'interrupted', 'unclaimed', 'faults'] as const;
export type Counter = (typeof COUNTERS)[number];

export class VcpuControl {
  readonly buffer: SharedArrayBuffer;
  readonly #ints: Int32Array;
  readonly #thread: BigInt64Array;
  readonly counters: Float64Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#ints = new Int32Array(buffer, 0, INTS);
    this.#thread = new BigInt64Array(buffer, INTS * 4, 1);
    this.counters = new Float64Array(buffer, INTS * 4 + 8, COUNTERS.length);
  }

  static create(): VcpuControl {
    return new VcpuControl(new SharedArrayBuffer(INTS * 4 + 8 + COUNTERS.length * 8));
  }

  static attach(buffer: SharedArrayBuffer): VcpuControl {
    return new VcpuControl(buffer);
  }

  get command(): VcpuCommand {
    return Atomics.load(this.#ints, COMMAND) as VcpuCommand;
  }

  set command(command: VcpuCommand) {
    Atomics.store(this.#ints, COMMAND, command);
    Atomics.notify(this.#ints, COMMAND);
  }

  get state(): VcpuState {
    return Atomics.load(this.#ints, STATE) as VcpuState;
  }

  set state(state: VcpuState) {
    Atomics.store(this.#ints, STATE, state);
    Atomics.notify(this.#ints, STATE);
  }

  /**
   * Sleeps until the command is no longer `command` (a paused vCPU waits like this), calling
   * `onWake` whenever it is poked meanwhile: a paused boot CPU still answers the APs' device
   * accesses, so that they can finish the exit they are in and pause too.
   */
  waitWhileCommand(command: VcpuCommand, onWake: () => void = () => {}): void {
    while (this.command === command) {
      // Serve first, then sleep briefly: a poke that comes between the two is not waited out.
      onWake();
      Atomics.wait(this.#ints, COMMAND, command, PAUSED_RECHECK_MS);
    }
  }

  get request(): VcpuRequest {
    return Atomics.load(this.#ints, REQUEST) as VcpuRequest;
  }

  /** Asks a paused vCPU thread to do something; it clears the request when done. */
  set request(request: VcpuRequest) {
    Atomics.store(this.#ints, REQUEST, request);
    if (request !== VcpuRequest.None) this.poke();
  }

  get dumpOnExit(): boolean {
    return Atomics.load(this.#ints, DUMP_ON_EXIT) !== 0;
  }

  /** Set before the Stop command that follows a crash, so the thread sees it when it obeys. */
  set dumpOnExit(value: boolean) {
    Atomics.store(this.#ints, DUMP_ON_EXIT, value ? 1 : 0);
  }

  /** Wakes a vCPU sleeping in waitWhileCommand without changing its command. */
  poke(): void {
    Atomics.notify(this.#ints, COMMAND);
  }

  get thread(): bigint {
    return Atomics.load(this.#thread, 0);
  }

  set thread(id: bigint) {
    Atomics.store(this.#thread, 0, id);
  }

  count(counter: Counter): number {
    return this.counters[COUNTERS.indexOf(counter)]!;
  }

  /** Off the hot path only (the exit loop indexes `counters` itself). */
  add(counter: Counter, n = 1): void {
    this.counters[COUNTERS.indexOf(counter)]! += n;
  }
}

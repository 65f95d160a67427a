// Waiting a few milliseconds without returning to the event loop, for the places that must finish
// synchronously (an exit handler, a write to a caller's non-blocking pipe, a cgroup whose last
// process is still leaving). Atomics.wait on a word nobody changes: a sleep that burns no CPU.

const word = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(word, 0, 0, ms);
}

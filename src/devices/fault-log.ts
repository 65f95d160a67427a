// How the VMM answers a guest that makes something go wrong (a device model that threw, an access
// nobody claims): count every occurrence, log the first of each kind, and go on. A guest can repeat
// a fault millions of times and vary it over a 2^52 address space, so neither the log nor the
// memory kept may grow with what the guest does: the kinds remembered are capped, and past the cap
// one line says that further kinds are only counted.

/** Distinct kinds logged before the rest are only counted. */
export const FAULT_KINDS_LOGGED = 32;

export class FaultLog {
  readonly #seen = new Set<string>();
  readonly #limit: number;
  #total = 0;
  #capped = false;

  /** `what` names the faults in the "only counted" line: "device faults", "unassigned accesses". */
  constructor(private readonly what: string, private readonly log: (message: string) => void, limit = FAULT_KINDS_LOGGED) {
    this.#limit = limit;
  }

  /**
   * Counts one fault of kind `kind`; the first of a kind is logged with `describe()`, which is
   * called only then (building a message per fault would cost the exit path).
   */
  report(kind: string, describe: () => string): void {
    this.#total++;
    if (this.#seen.has(kind)) return;
    if (this.#seen.size >= this.#limit) {
      if (!this.#capped) {
        this.#capped = true;
        this.log(`more than ${this.#limit} kinds of ${this.what}: further ones are counted, not logged`);
      }
      return;
    }
    this.#seen.add(kind);
    this.log(`${describe()} (logged once; repeats are counted)`);
  }

  /** Faults reported, of every kind. */
  get total(): number {
    return this.#total;
  }
}

/** An error's one-line description, whatever was thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message.split('\n')[0]}`;
  return String(error);
}

/** An error's kind for FaultLog: its class, not its message (which may carry guest values). */
export function errorKind(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

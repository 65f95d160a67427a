// Where a character device's bytes come from and go to.

export interface ByteSink {
  write(byte: number): void;
}

export interface ByteSource {
  /** Moves up to `into.length` waiting bytes into `into`; returns how many. Never blocks. */
  read(into: Uint8Array): number;
}

export const NULL_SOURCE: ByteSource = { read: () => 0 };

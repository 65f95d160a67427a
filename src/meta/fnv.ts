// FNV-1a: a short, stable hash of names and descriptions that needs no node:crypto (whose
// modules, some fifteen, cost a command's start a few milliseconds). Not for anything an
// adversary chooses to collide: only to tell apart what is already unique (runtime directories,
// container ids, a wire format's description).

/** FNV-1a, 32 bits, of `bytes`. */
export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const byte of bytes) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

const FNV64_PRIME = 0x100000001b3n;

/** FNV-1a, 64 bits, of `text`'s UTF-8 bytes, as 16 hex digits. */
export function fnv1a64Hex(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text)) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * FNV64_PRIME);
  return h.toString(16).padStart(16, '0');
}

// FNV-1a: a short, stable hash of names and descriptions that needs no node:crypto (whose
// modules, some fifteen, cost a command's start a few milliseconds). Not for anything an
// adversary chooses to collide: only to tell apart what is already unique (runtime directories,
// container ids, a wire format's description). Plain indexed loops on 32-bit numbers: these run
// once per start, in the interpreter, where an iterator or BigInt costs many times more.

/** FNV-1a, 32 bits, of `bytes`. */
export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return h;
}

/**
 * FNV-1a, 64 bits, of `text`'s UTF-8 bytes, as 16 hex digits. The 64-bit product by the prime
 * 2^40 + 0x1b3 in two 32-bit halves: lo * 0x1b3 (exact in a double, < 2^41) gives the new low
 * half and a carry; the high half is hi * 0x1b3 + carry + lo << 8 (lo * 2^40 seen from 2^32).
 */
export function fnv1a64Hex(text: string): string {
  const bytes = Buffer.from(text);
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    const low = lo * 0x1b3;
    hi = (Math.imul(hi, 0x1b3) + Math.floor(low / 0x100000000) + (lo << 8)) >>> 0;
    lo = low >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

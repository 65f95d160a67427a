// How sizes and addresses appear in the loader's one-line errors.

import { MiB } from '../arch/x86/layout.js';

export function formatSize(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

export const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

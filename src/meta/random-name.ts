// The name an instance gets when it is given none: PREFIX-XXXXXX, six hex digits. It must only
// differ from the names of the instances running now (a taken one is refused and named), so
// Math.random is enough, and node:crypto (some fifteen modules to load) stays out of the start.

export function randomName(prefix: string): string {
  return `${prefix}-${Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, '0')}`;
}

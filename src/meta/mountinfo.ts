// /proc/PID/mountinfo, one entry per mount (proc(5)): the fields tsvmm reads, unescaped.

export interface MountEntry {
  /** The root of the mount within its filesystem (a bind or a cgroup subtree shows only part of it). */
  root: string;
  mountPoint: string;
  fstype: string;
  /** The filesystem's own options (for cgroup v1: its controllers). */
  superOptions: string;
}

/** mountinfo escapes spaces, tabs, newlines and backslashes as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    // The optional fields before " - " vary in number; the filesystem's fields follow it.
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const fields = line.slice(0, dash).split(' ');
    const [fstype = '', , superOptions = ''] = line.slice(dash + 3).split(' ');
    entries.push({ root: unescape(fields[3] ?? '/'), mountPoint: unescape(fields[4] ?? ''), fstype, superOptions });
  }
  return entries;
}

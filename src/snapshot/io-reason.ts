// What an I/O error means, in words: the messages Node gives carry the system call and the path
// it was given (for a snapshot being written, a temporary name the user never chose).

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  EFBIG: 'file too large for the file system',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  EXDEV: 'not on the same file system',
};

export function ioReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code !== undefined) return REASONS[code] ?? code;
  return (error as Error)?.message ?? String(error);
}

/** File-system failures the apply path treats specially. */

/** True when `err` means the file system is full (or over quota). */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

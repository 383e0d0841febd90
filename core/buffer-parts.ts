/** The bytes of `parts` from `skip` on, as views: what is left to write after a short writev. */
export function partsFrom(parts: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    out.push(skip ? p.subarray(skip) : p);
    skip = 0;
  }
  return out;
}

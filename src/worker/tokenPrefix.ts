import type { Token } from 'node-llama-cpp';

/** Number of leading tokens `a` and `b` share. */
export function commonPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Whether `shorter` is `longer` or the start of it. */
export function isPrefixOf(shorter: readonly Token[], longer: readonly Token[]): boolean {
  return shorter.length <= longer.length && commonPrefix(shorter, longer) === shorter.length;
}

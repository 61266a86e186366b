/** How many trailing characters of `text` could be the start of `marker` (to hold back from a stream). */
export function partialSuffix(text: string, marker: string): number {
  for (let k = Math.min(marker.length - 1, text.length); k > 0; k--) if (text.endsWith(marker.slice(0, k))) return k;
  return 0;
}

/**
 * Finds stop strings in streamed text without ever emitting part of one: text that could
 * still turn into a stop string is held back until the next chunk settles it.
 */
export class StopDetector {
  readonly #stops: readonly string[];
  #held = '';

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  /** Feeds a chunk; returns the text that is safe to emit and whether a stop string matched. */
  push(chunk: string): { text: string; isStopped: boolean } {
    const combined = this.#held + chunk;
    if (this.#stops.length === 0) return { text: combined, isStopped: false };
    let earliest = -1;
    for (const stop of this.#stops) {
      const at = combined.indexOf(stop);
      if (at !== -1 && (earliest === -1 || at < earliest)) earliest = at;
    }
    if (earliest !== -1) {
      this.#held = '';
      return { text: combined.slice(0, earliest), isStopped: true };
    }
    const keep = this.#longestPartialSuffix(combined);
    this.#held = combined.slice(combined.length - keep);
    return { text: combined.slice(0, combined.length - keep), isStopped: false };
  }

  /** Releases text held back at the end of generation. */
  flush(): string {
    const held = this.#held;
    this.#held = '';
    return held;
  }

  #longestPartialSuffix(text: string): number {
    let best = 0;
    for (const stop of this.#stops) {
      for (let k = Math.min(stop.length - 1, text.length); k > best; k--) {
        if (text.endsWith(stop.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}

/** Time helpers: one monotonic clock for every measurement, and deadlines that bound loops. */

/** Milliseconds on the monotonic clock shared by the raw and gateway paths. */
export const now = (): number => performance.now();

/** A wall-clock budget: loops check `expired` between iterations and stop by themselves. */
export class Deadline {
  readonly #end: number;

  constructor(ms: number) {
    this.#end = now() + ms;
  }

  get expired(): boolean {
    return now() >= this.#end;
  }

  get remainingMs(): number {
    return Math.max(0, this.#end - now());
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

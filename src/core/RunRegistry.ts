import type { AbortReason } from './GenerationRun.js';

/** Something that can be stopped with a reason (a GenerationRun). */
export interface Stoppable {
  stop(reason: AbortReason): void;
}

/**
 * The runs in flight, so shutdown can wait for them to finish and stop the rest once its
 * grace period is over. Runs add themselves when they begin and leave when disposed.
 */
export class RunRegistry {
  readonly #runs = new Set<Stoppable>();
  #onIdle: (() => void) | undefined;

  get size(): number {
    return this.#runs.size;
  }

  add(run: Stoppable): void {
    this.#runs.add(run);
  }

  delete(run: Stoppable): void {
    this.#runs.delete(run);
    if (this.#runs.size === 0) this.#onIdle?.();
  }

  /** Resolves once no run is in flight. */
  idle(): Promise<void> {
    if (this.#runs.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#onIdle = resolve));
  }

  /** Stops every run in flight: each ends with its protocol's terminal event. */
  stopAll(reason: AbortReason): void {
    for (const run of this.#runs) run.stop(reason);
  }
}

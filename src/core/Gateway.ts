import type { GenerateRequest, GenerationEvent, ModelInfo } from './types.js';

/** Options that travel with one request. */
export interface GenerateOptions {
  /** Aborts queueing, prefill or decoding; the slot is freed once the worker has stopped. */
  readonly signal: AbortSignal;
}

/** Readiness as `/ready` reports it. */
export interface Readiness {
  /** Whether any slot can serve. */
  readonly isReady: boolean;
  /** Why not, or (when ready) what degrades it, e.g. a worker restarting. */
  readonly reason?: string;
}

/**
 * One generation, from admission to the worker's last word. Its slot is held until the
 * generation has ended and been disposed: `dispose` cancels what still runs, waits for the
 * worker to confirm it stopped and frees the slot, so use it with `await using` and a throw
 * anywhere in the consumer cannot leak the slot. Disposing twice is harmless.
 */
export interface Generation extends AsyncDisposable {
  /**
   * The events, read once: `progress` while queued, then `start` (after admission and
   * tokenization, so errors such as context overflow are thrown before any stream byte),
   * output, and `done` last. Failures are thrown as FlintError from the iterator.
   */
  readonly events: AsyncIterable<GenerationEvent>;
  dispose(): Promise<void>;
}

/** What transports call. */
export interface Gateway {
  start(request: GenerateRequest, options: GenerateOptions): Generation;
  /** The served model, once loaded. */
  readonly model: ModelInfo | undefined;
  readiness(): Readiness;
}

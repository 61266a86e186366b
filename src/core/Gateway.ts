import type { GenerateRequest, GenerationEvent, ModelInfo } from './types.js';

/** Options that travel with one request. */
export interface GenerateOptions {
  /** Aborts queueing, prefill or decoding; the slot is freed once the worker has stopped. */
  readonly signal: AbortSignal;
}

/** Readiness as `/ready` reports it. */
export interface Readiness {
  readonly isReady: boolean;
  readonly reason?: string;
}

/**
 * What transports call. The first event is always `start` (sent after admission and
 * tokenization, so errors such as context overflow are thrown before any stream byte);
 * the last is `done`. Failures are thrown as FlintError from the iterator.
 */
export interface Gateway {
  generate(request: GenerateRequest, options: GenerateOptions): AsyncIterable<GenerationEvent>;
  /** The served model, once loaded. */
  readonly model: ModelInfo | undefined;
  readiness(): Readiness;
}

import type { FinishReason, GenerationTimings, Usage } from './types.js';

/** Summary of one finished API request, reported once by the transport that served it. */
export interface RequestSummary {
  readonly api: 'chat' | 'completions' | 'responses' | 'responses_ws' | 'infill' | 'ollama_chat' | 'ollama_generate' | 'messages';
  readonly status: number;
  /** `ok`, `cancelled` (client gone or cancelled), `timeout` (server deadline), or `error`. */
  readonly outcome: 'ok' | 'cancelled' | 'timeout' | 'error';
  readonly finishReason?: FinishReason;
  readonly usage?: Usage;
  readonly timings?: GenerationTimings;
  /** Seconds from request arrival to the first generated text, if any was sent. */
  readonly timeToFirstTokenS?: number;
  readonly durationS: number;
  /** Error code (FLINT_ERR_* or wire code) when outcome is `error`. */
  readonly errorCode?: string | null;
}

/** Receives request summaries; app.ts turns them into metrics. */
export interface RequestObserver {
  onRequestFinished(summary: RequestSummary): void;
}

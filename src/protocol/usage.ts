import type { Usage } from '../core/types.js';

/** The `usage` fields Chat Completions and legacy Completions share. */
export function toTokenUsage(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedTokens },
  };
}

/** Queue and prefill progress of a request that has produced nothing yet. */
export interface ProgressCounts {
  readonly evaluatedTokens: number;
  readonly totalTokens: number;
  readonly queuePosition: number;
}

/**
 * The keep-alive chunk of Chat and Completions streams while a request is queued or in prefill:
 * a real data chunk (idle timers of many clients ignore SSE comments) with no choices, so SDKs
 * skip it as they skip the usage chunk, and Flint's `flint_progress` extension.
 */
export function toProgressChunk(head: { id: string; object: string; created: number; model: string }, progress: ProgressCounts): string {
  return JSON.stringify({
    ...head,
    choices: [],
    flint_progress: { evaluated_tokens: progress.evaluatedTokens, total_tokens: progress.totalTokens, queue_position: progress.queuePosition },
  });
}

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

import type { FinishReason, GenerationTimings, Usage } from '../../core/types.js';

/** What llama-server reports as `generation_settings`, the part its clients read. */
export interface InfillSettings {
  readonly model: string;
  readonly contextSize: number;
  readonly maxTokens: number | undefined;
  readonly temperature: number | undefined;
}

/** llama-server's `stop_type`: a natural end, a token cap or time limit, or none (cancelled). */
function toStopType(reason: FinishReason): 'eos' | 'limit' | 'none' {
  return reason === 'length' ? 'limit' : reason === 'cancelled' ? 'none' : 'eos';
}

/** One streamed `/infill` chunk, as llama-server writes it (`stop: false`). */
export function toInfillChunk(text: string, tokensPredicted: number, tokensEvaluated: number): string {
  return JSON.stringify({ index: 0, content: text, tokens: [], stop: false, id_slot: 0, tokens_predicted: tokensPredicted, tokens_evaluated: tokensEvaluated });
}

/**
 * The final `/infill` object (non-streaming reply, and the last streamed event), with
 * llama-server's field names: `tokens_evaluated` is the prompt, `tokens_cached` what the slot
 * holds afterwards, `timings.cache_n` the prompt tokens reused and `prompt_n` those evaluated.
 */
export function toInfillResult(content: string, done: { finishReason: FinishReason; usage: Usage; timings: GenerationTimings; truncated?: boolean }, settings: InfillSettings, responseFields?: readonly string[]): Record<string, unknown> {
  const { usage, timings } = done;
  const promptN = usage.promptTokens - usage.cachedTokens;
  const predictedN = usage.completionTokens;
  const result: Record<string, unknown> = {
    index: 0,
    content,
    tokens: [],
    id_slot: 0,
    stop: true,
    model: settings.model,
    tokens_predicted: predictedN,
    tokens_evaluated: usage.promptTokens,
    generation_settings: {
      n_ctx: settings.contextSize,
      n_predict: settings.maxTokens ?? -1,
      model: settings.model,
      temperature: settings.temperature ?? 0.8,
    },
    prompt: '',
    has_new_line: content.includes('\n'),
    truncated: done.truncated === true,
    stop_type: toStopType(done.finishReason),
    stopping_word: '',
    tokens_cached: usage.promptTokens + predictedN,
    timings: {
      cache_n: usage.cachedTokens,
      prompt_n: promptN,
      prompt_ms: timings.prefillMs,
      prompt_per_token_ms: promptN > 0 ? timings.prefillMs / promptN : 0,
      prompt_per_second: timings.prefillMs > 0 ? (promptN * 1000) / timings.prefillMs : 0,
      predicted_n: predictedN,
      predicted_ms: timings.decodeMs,
      predicted_per_token_ms: predictedN > 0 ? timings.decodeMs / predictedN : 0,
      predicted_per_second: timings.decodeMs > 0 ? (predictedN * 1000) / timings.decodeMs : 0,
    },
  };
  return responseFields ? pick(result, responseFields) : result;
}

/** `response_fields` as llama-server applies them: each path (`timings/prompt_n`) becomes a flat key; unknown paths are left out. */
function pick(result: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    let value: unknown = result;
    for (const key of path.split('/')) value = value !== null && typeof value === 'object' && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
    if (value !== undefined) out[path] = value;
  }
  return out;
}

import type { ChatMessage, GenerateRequest, RequestId, SlotPlacement } from '../../core/types.js';
import type { ParsedResponseRequest } from './parseResponseRequest.js';

/** Routing facts the transport knows besides the body. */
export interface ResponsesRouting {
  /** Slot-affinity key; defaults to `prompt_cache_key`, then the previous response id. */
  readonly cacheKey?: string;
  /** The slot the client's previous request of this turn ran on (a verified turn-state token). */
  readonly slotHint?: SlotPlacement;
}

/** The internal request of a Responses create, given the rendered conversation. */
export function toGenerateRequest(parsed: ParsedResponseRequest, id: string, messages: ChatMessage[], routing: ResponsesRouting, compactionMaxTokens: number): GenerateRequest {
  const b = parsed.body;
  const maxTokens = b.max_output_tokens ?? undefined;
  const isCompaction = parsed.isCompactionRequested;
  return {
    id: id as RequestId,
    model: parsed.model,
    input: { type: 'chat', messages },
    inputParam: 'input',
    sampling: { temperature: b.temperature ?? undefined, topP: b.top_p ?? undefined, seed: b.seed ?? undefined },
    maxTokens: isCompaction ? Math.min(maxTokens ?? Infinity, compactionMaxTokens) : maxTokens,
    stop: [],
    cacheKey: routing.cacheKey ?? b.prompt_cache_key ?? parsed.previousResponseId,
    slotHint: routing.slotHint,
    // A summary is text: no tool calls, but the same tool list keeps the prompt a cached prefix.
    tools: parsed.tools,
    toolChoice: isCompaction ? 'none' : parsed.toolChoice,
    parallelToolCalls: parsed.parallelToolCalls,
    responseFormat: isCompaction ? undefined : parsed.responseFormat,
    isWarmupOnly: !parsed.isGenerating,
  };
}

import { createId } from '../../utils/ids.js';
import type { ParsedResponseRequest } from './parseResponseRequest.js';
import type { ResponseObject } from './ResponseStream.js';

/** A fresh in-progress response echoing the request's settings. */
export function toResponseObject(parsed: ParsedResponseRequest, id = createId('resp_')): ResponseObject {
  const b = parsed.body;
  return {
    id,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    completed_at: null,
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: parsed.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    max_tool_calls: null,
    model: parsed.model,
    output: [],
    parallel_tool_calls: parsed.parallelToolCalls,
    previous_response_id: parsed.previousResponseId ?? null,
    prompt_cache_key: b.prompt_cache_key ?? null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: parsed.isStored,
    temperature: b.temperature ?? 1,
    text: parsed.text,
    tool_choice: b.tool_choice ?? 'auto',
    tools: (b.tools ?? []).map(echoTool),
    top_logprobs: 0,
    top_p: b.top_p ?? 1,
    truncation: b.truncation ?? 'disabled',
    usage: null,
    user: null,
    metadata: parsed.metadata,
  };
}

/** A request tool as the response object echoes it: only the fields its type defines. */
function echoTool(raw: unknown): Record<string, unknown> {
  const t = raw as Record<string, unknown>;
  switch (t.type) {
    case 'function':
      return { type: 'function', name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null };
    case 'namespace':
      return { type: 'namespace', name: t.name, description: t.description ?? null, tools: Array.isArray(t.tools) ? t.tools.map(echoTool) : [] };
    case 'custom':
      return { type: 'custom', name: t.name, description: t.description ?? null, format: t.format ?? { type: 'text' } };
    default:
      return { type: t.type };
  }
}

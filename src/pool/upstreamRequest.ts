import type { ChatMessage, GenerateRequest, SamplingOptions, ToolSpec } from '../core/types.js';

/** What speaks behind an upstream URL; each takes OpenAI-compatible streaming requests. */
export type UpstreamKind = 'flint' | 'llama-server' | 'vllm' | 'ollama' | 'openai';

/** The readiness probe of each kind (any 2xx is up). */
export const healthPaths: Readonly<Record<UpstreamKind, string>> = {
  flint: '/ready',
  'llama-server': '/health',
  vllm: '/health',
  ollama: '/api/version',
  openai: '/v1/models',
};

/** One request to a member: path and JSON body. */
export interface UpstreamRequest {
  readonly path: '/v1/chat/completions' | '/v1/completions' | '/infill';
  readonly body: Record<string, unknown>;
}

/**
 * A generation as an OpenAI-compatible streaming request: chats to `/v1/chat/completions`, raw
 * prompts and fill-in-the-middle to `/v1/completions` (`suffix`). Fill-in-the-middle goes to
 * llama.cpp's own `/infill` where the member has it (llama-server, and Flint for its repo-level
 * layout with extra chunks), so the member lays the prompt out and cuts it to fit as llama-server
 * does. Sampling settings outside
 * OpenAI's own are sent only to kinds that read them (llama.cpp's and vLLM's names differ), and
 * the cache key only to Flint members, whose slot affinity uses it.
 */
export function toUpstreamRequest(request: GenerateRequest, model: string, kind: UpstreamKind): UpstreamRequest {
  const input = request.input;
  if (input.type === 'infill' && (kind === 'llama-server' || (kind === 'flint' && input.repo))) return toInfillRequest(request, input, kind);
  const body: Record<string, unknown> = {
    model,
    stream: true,
    // Flint and vLLM report the usage so far in every chunk: the front counts tokens exactly.
    stream_options: kind === 'flint' || kind === 'vllm' ? { include_usage: true, continuous_usage_stats: true } : { include_usage: true },
    ...samplingFields(request.sampling, kind),
    // Evaluating the prompt into the member's cache needs one token there; the front sends none on.
    max_tokens: request.isWarmupOnly ? 1 : request.maxTokens,
    stop: request.stop.length > 0 ? request.stop.slice(0, 4) : undefined,
  };
  if (kind === 'llama-server') body.cache_prompt = true;
  if (kind === 'flint') body.prompt_cache_key = request.cacheKey;
  if (input.type !== 'chat') {
    body.prompt = input.type === 'text' ? (input.tokens ?? input.prompt) : input.prefix;
    if (input.type === 'infill') body.suffix = input.suffix;
    return { path: '/v1/completions', body: withoutUndefined(body) };
  }
  body.messages = input.messages.map(toWireMessage);
  if (request.continuation !== undefined) {
    // The answer so far (a migrated turn), continued by the member: vLLM's convention, which Flint reads too.
    (body.messages as unknown[]).push({ role: 'assistant', content: request.continuation });
    Object.assign(body, { continue_final_message: true, add_generation_prompt: false });
  }
  if (request.tools && request.tools.length > 0) {
    body.tools = request.tools.map(toWireTool);
    const choice = request.toolChoice;
    body.tool_choice = choice === undefined || typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
    body.parallel_tool_calls = request.parallelToolCalls;
  }
  const format = request.responseFormat;
  if (format?.type === 'json_object') body.response_format = { type: 'json_object' };
  else if (format?.type === 'json_schema') body.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: format.schema } };
  if (request.prediction !== undefined && kind === 'flint') body.prediction = { type: 'content', content: request.prediction };
  return { path: '/v1/chat/completions', body: withoutUndefined(body) };
}

/** llama.cpp's `/infill` body (its native streaming format answers it). */
function toInfillRequest(request: GenerateRequest, input: Extract<GenerateRequest['input'], { type: 'infill' }>, kind: UpstreamKind): UpstreamRequest {
  const body: Record<string, unknown> = {
    input_prefix: input.prefix,
    input_suffix: input.suffix,
    input_extra: (input.repo?.extra ?? []).map((c) => ({ filename: c.filename, text: c.text })),
    prompt: input.repo?.prompt ?? '',
    n_predict: request.isWarmupOnly ? 0 : (request.maxTokens ?? -1),
    stream: true,
    cache_prompt: true,
    ...samplingFields(request.sampling, kind),
    stop: request.stop.length > 0 ? [...request.stop] : undefined,
    t_max_predict_ms: request.maxPredictMs,
  };
  return { path: '/infill', body: withoutUndefined(body) };
}

/** Sampling settings under the names `kind` reads: OpenAI's own for every kind, llama.cpp's or vLLM's extras for theirs. */
function samplingFields(s: SamplingOptions, kind: UpstreamKind): Record<string, unknown> {
  const fields: Record<string, unknown> = { temperature: s.temperature, top_p: s.topP, seed: s.seed, presence_penalty: s.presencePenalty, frequency_penalty: s.frequencyPenalty };
  if (kind === 'openai') return fields;
  return { ...fields, top_k: s.topK, min_p: s.minP, [kind === 'vllm' ? 'repetition_penalty' : 'repeat_penalty']: s.repeatPenalty };
}

function toWireMessage(m: ChatMessage): Record<string, unknown> {
  switch (m.role) {
    case 'tool':
      return { role: 'tool', content: m.content, tool_call_id: m.toolCallId ?? '' };
    case 'assistant': {
      const calls = m.toolCalls ?? [];
      if (calls.length === 0) return { role: 'assistant', content: m.content };
      return {
        role: 'assistant',
        content: m.content.length > 0 ? m.content : null,
        tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
      };
    }
    case 'developer':
      // Chat templates render developer messages as system ones; not every server knows the role.
      return { role: 'system', content: m.content };
    default:
      return { role: m.role, content: m.content };
  }
}

function toWireTool(tool: ToolSpec): Record<string, unknown> {
  // A custom (free-text) tool becomes a function of one string, as Flint renders it to its own model.
  const parameters = tool.custom ? { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] } : (tool.parameters ?? { type: 'object', properties: {} });
  return { type: 'function', function: withoutUndefined({ name: tool.name, description: tool.description, parameters }) };
}

function withoutUndefined(o: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(o)) if (o[key] === undefined) delete o[key];
  return o;
}

import { FlintError } from '../../errors/FlintError.js';
import type { ChatMessage, GenerateRequest, RequestId, ResponseFormat, ToolChoice } from '../../core/types.js';
import { createValidator } from '../validate.js';
import { ChatCompletionRequestSchema, type ChatCompletionRequest, type ChatMessageWire } from './schema.js';
import { parseChatTools, toCustomArguments, type HostedToolPolicy, type ToolTable } from '../tools.js';

const validator = createValidator(ChatCompletionRequestSchema);

/** A parsed chat request: the internal request plus what the response encoder needs. */
export interface ParsedChatRequest {
  readonly request: GenerateRequest;
  readonly isStream: boolean;
  readonly includeUsage: boolean;
  /** vLLM's `continuous_usage_stats`: every chunk carries the usage so far. */
  readonly continuousUsage: boolean;
  /** The model name to echo back. */
  readonly model: string;
  /** How the model's tool calls map back to function and custom tools. */
  readonly toolTable: ToolTable;
}

/** Checks an untrusted Chat Completions body and maps it to the internal request. */
export function parseChatRequest(body: unknown, id: RequestId, resolveModel: (requested: unknown) => string, hostedTools: HostedToolPolicy = 'ignore'): ParsedChatRequest {
  const wire: ChatCompletionRequest = validator.parse(body);
  const model = resolveModel(wire.model);
  if ((wire.n ?? 1) > 1) {
    throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: 'n', details: { detail: 'Only n=1 is supported.' } });
  }
  const messages = wire.messages.map((m, i) => toChatMessage(m, i));
  const continuation = toContinuation(wire, messages);
  const stop = wire.stop == null ? [] : typeof wire.stop === 'string' ? [wire.stop] : wire.stop;
  const isStream = wire.stream === true;
  const toolTable = parseChatTools(wire.tools ?? [], hostedTools);
  return {
    isStream,
    toolTable,
    includeUsage: isStream && wire.stream_options?.include_usage === true,
    continuousUsage: isStream && wire.stream_options?.include_usage === true && wire.stream_options.continuous_usage_stats === true,
    model,
    request: {
      id,
      model,
      input: { type: 'chat', messages },
      sampling: {
        temperature: wire.temperature ?? undefined,
        topP: wire.top_p ?? undefined,
        topK: wire.top_k ?? undefined,
        minP: wire.min_p ?? undefined,
        seed: wire.seed ?? undefined,
        presencePenalty: wire.presence_penalty ?? undefined,
        frequencyPenalty: wire.frequency_penalty ?? undefined,
        repeatPenalty: wire.repeat_penalty ?? undefined,
      },
      maxTokens: wire.max_completion_tokens ?? wire.max_tokens ?? undefined,
      stop,
      cacheKey: wire.prompt_cache_key ?? undefined,
      tools: toolTable.specs,
      toolChoice: toToolChoice(wire.tool_choice, toolTable),
      parallelToolCalls: wire.parallel_tool_calls !== false,
      responseFormat: toResponseFormat(wire.response_format ?? undefined),
      prediction: toPrediction(wire),
      continuation,
    },
  };
}

/**
 * vLLM's `continue_final_message`: the final assistant message is the start of the answer, not a
 * finished turn. It is taken off `messages` (which then end where the answer begins) and returned.
 */
function toContinuation(wire: ChatCompletionRequest, messages: ChatMessage[]): string | undefined {
  if (wire.continue_final_message !== true) {
    if (wire.add_generation_prompt === false) {
      throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: 'add_generation_prompt', details: { detail: 'add_generation_prompt: false is supported only with continue_final_message: true.' } });
    }
    return undefined;
  }
  const last = messages.at(-1);
  if (last?.role !== 'assistant' || (last.toolCalls?.length ?? 0) > 0 || last.reasoning !== undefined) {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'messages', details: { detail: 'continue_final_message needs the last message to be an assistant message with text content only.' } });
  }
  if (wire.add_generation_prompt === true) {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'add_generation_prompt', details: { detail: 'continue_final_message and add_generation_prompt cannot both be true.' } });
  }
  messages.pop();
  return last.content;
}

/** `prediction` (Predicted Outputs): text used as a draft; combinations Flint cannot serve are 400s. */
function toPrediction(wire: ChatCompletionRequest): string | undefined {
  const prediction = wire.prediction;
  if (!prediction) return undefined;
  if (prediction.type !== 'content') {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'prediction.type', details: { detail: "Invalid value for 'prediction.type': only 'content' is supported." } });
  }
  if ((wire.tools?.length ?? 0) > 0 || (wire.response_format && wire.response_format.type !== 'text')) {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'prediction', details: { detail: 'Predicted outputs cannot be combined with tools or response_format.' } });
  }
  return typeof prediction.content === 'string' ? prediction.content : prediction.content.map((p) => p.text).join('');
}

function toToolChoice(choice: unknown, table: ToolTable): ToolChoice {
  if (choice === undefined || choice === null || choice === 'auto') return 'auto';
  if (choice === 'none' || choice === 'required') return table.specs.length === 0 ? 'auto' : choice;
  const object = choice as { type?: unknown; function?: { name?: unknown }; custom?: { name?: unknown } };
  const name = object.type === 'custom' ? object.custom?.name : object.function?.name;
  if (typeof name === 'string' && table.byModelName.get(name)?.type === (object.type === 'custom' ? 'custom' : 'function')) return { name };
  throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'tool_choice', details: { detail: "Invalid value for 'tool_choice': expected none, auto, required or a function in tools." } });
}

function toResponseFormat(format: ChatCompletionRequest['response_format'] | undefined): ResponseFormat | undefined {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  const schema = (format.json_schema as { schema?: unknown } | undefined)?.schema;
  if (format.type === 'json_schema' && typeof schema === 'object' && schema !== null) return { type: 'json_schema', schema: schema as Record<string, unknown> };
  throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'response_format', details: { detail: "Invalid value for 'response_format': expected text, json_object or json_schema with json_schema.schema." } });
}

function toChatMessage(m: ChatMessageWire, index: number): ChatMessage {
  const content = toText(m.content, `messages[${index}].content`);
  const role = (m.role === 'function' ? 'tool' : m.role) as ChatMessage['role'];
  if (role === 'tool' && m.role === 'tool' && m.tool_call_id === undefined) {
    throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `messages[${index}].tool_call_id` });
  }
  if (role !== 'assistant' && m.content == null) {
    throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `messages[${index}].content` });
  }
  return {
    role,
    content,
    toolCalls: m.tool_calls?.map((c, j) => toHistoryCall(c, `messages[${index}].tool_calls[${j}]`)),
    toolCallId: m.tool_call_id ?? (m.role === 'function' ? m.name : undefined),
  };
}

/** A call in the history: a function call, or a custom tool call whose input travels as `{"input": ...}`. */
function toHistoryCall(call: NonNullable<ChatMessageWire['tool_calls']>[number], param: string): { id: string; name: string; arguments: string } {
  if (call.function) return { id: call.id, name: call.function.name, arguments: call.function.arguments };
  if (call.custom) return { id: call.id, name: call.custom.name, arguments: toCustomArguments(call.custom.input) };
  throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `${param}.function` });
}

function toText(content: ChatMessageWire['content'], param: string): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  let text = '';
  content.forEach((part, i) => {
    const partText = (part as { text?: unknown }).text;
    if (part.type !== 'text' || typeof partText !== 'string') {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', {
        param: `${param}[${i}]`,
        details: { detail: `Content parts of type '${part.type}' are not supported by this text-only model.` },
      });
    }
    text += partText;
  });
  return text;
}

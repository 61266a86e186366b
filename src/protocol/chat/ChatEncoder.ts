import type { FinishReason, ToolCall, Usage } from '../../core/types.js';
import { toProgressChunk, toTokenUsage, type ProgressCounts } from '../usage.js';
import { toWireToolCall, type ToolTable } from '../tools.js';

/** The finish reasons Chat Completions knows; a cancelled stream never claims `stop`. */
export type ChatFinishReason = 'stop' | 'length' | 'tool_calls' | null;

/** Chat Completions `usage` from internal counts. */
export function toChatUsage(usage: Usage) {
  return {
    ...toTokenUsage(usage),
    completion_tokens_details: {
      reasoning_tokens: 0,
      accepted_prediction_tokens: usage.acceptedPredictionTokens ?? 0,
      rejected_prediction_tokens: usage.rejectedPredictionTokens ?? 0,
    },
  };
}

/** Maps the internal finish reason; `cancelled` has no wire value and is reported as null. */
export function toChatFinishReason(reason: FinishReason): ChatFinishReason {
  return reason === 'cancelled' ? null : reason;
}

/**
 * Renders one chat completion stream. The constant part of every chunk (`id`, `object`,
 * `created`, `model`) is serialized once; each delta splices in only its escaped text.
 */
export class ChatStreamEncoder {
  readonly #head: string;
  readonly #usageTail: string;
  readonly #id: string;
  readonly #model: string;
  readonly #createdS: number;

  constructor(id: string, model: string, createdS: number, includeUsage: boolean) {
    this.#id = id;
    this.#model = model;
    this.#createdS = createdS;
    this.#head = `{"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${createdS},"model":${JSON.stringify(model)},"system_fingerprint":"fp_flint","choices":[{"index":0,"delta":`;
    this.#usageTail = includeUsage ? ',"usage":null' : '';
  }

  /** First chunk: the assistant role with empty content. */
  role(): string {
    return `${this.#head}{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${this.#usageTail}}`;
  }

  /** `usage`: the usage so far, for `continuous_usage_stats` (else the chunk's usage is null, or absent). */
  content(text: string, usage?: { promptTokens: number; completionTokens: number }): string {
    const tail = usage ? `,"usage":{"prompt_tokens":${usage.promptTokens},"completion_tokens":${usage.completionTokens},"total_tokens":${usage.promptTokens + usage.completionTokens}}` : this.#usageTail;
    return `${this.#head}{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]${tail}}`;
  }

  /** A keep-alive chunk with no choices, carrying Flint's `flint_progress` extension. */
  progress(progress: ProgressCounts): string {
    return toProgressChunk({ id: this.#id, object: 'chat.completion.chunk', created: this.#createdS, model: this.#model }, progress);
  }

  /** One complete tool call as a `tool_calls` delta (Flint sends each call whole). */
  toolCall(index: number, call: ToolCall, tools?: ToolTable): string {
    const entry = { index, ...toChatToolCall(call, tools) };
    return `${this.#head}{"tool_calls":[${JSON.stringify(entry)}]},"logprobs":null,"finish_reason":null}]${this.#usageTail}}`;
  }

  finish(reason: ChatFinishReason): string {
    return `${this.#head}{},"logprobs":null,"finish_reason":${JSON.stringify(reason)}}]${this.#usageTail}}`;
  }

  /** The extra chunk sent with `stream_options.include_usage`. */
  usage(usage: Usage): string {
    return JSON.stringify({
      id: this.#id,
      object: 'chat.completion.chunk',
      created: this.#createdS,
      model: this.#model,
      system_fingerprint: 'fp_flint',
      choices: [],
      usage: toChatUsage(usage),
    });
  }
}

/** The non-streaming `chat.completion` object. */
/** A call as Chat Completions writes it: `function` with JSON arguments, or `custom` with free-text input. */
function toChatToolCall(call: ToolCall, tools: ToolTable | undefined) {
  const wire = toWireToolCall(call, tools);
  return wire.type === 'custom'
    ? { id: call.id, type: 'custom' as const, custom: { name: wire.name, input: wire.input } }
    : { id: call.id, type: 'function' as const, function: { name: wire.name, arguments: wire.arguments } };
}

export function toChatCompletion(id: string, model: string, createdS: number, text: string, reason: FinishReason, usage: Usage, toolCalls: readonly ToolCall[] = [], tools?: ToolTable) {
  const message =
    toolCalls.length > 0
      ? {
          role: 'assistant' as const,
          content: text.length > 0 ? text : null,
          refusal: null,
          annotations: [],
          tool_calls: toolCalls.map((c) => toChatToolCall(c, tools)),
        }
      : { role: 'assistant' as const, content: text, refusal: null, annotations: [] };
  return {
    id,
    object: 'chat.completion' as const,
    created: createdS,
    model,
    system_fingerprint: 'fp_flint',
    service_tier: 'default',
    choices: [
      {
        index: 0,
        finish_reason: toChatFinishReason(reason),
        logprobs: null,
        message,
      },
    ],
    usage: toChatUsage(usage),
  };
}

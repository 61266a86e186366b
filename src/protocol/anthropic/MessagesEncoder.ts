import type { FinishReason, ToolCall, Usage } from '../../core/types.js';

type StopReason = 'end_turn' | 'max_tokens' | 'tool_use';

export function toStopReason(reason: FinishReason): StopReason {
  return reason === 'length' ? 'max_tokens' : reason === 'tool_calls' ? 'tool_use' : 'end_turn';
}

/**
 * Anthropic's usage: `input_tokens` are the prompt tokens evaluated for this request, and
 * `cache_read_input_tokens` those reused from the KV cache (Flint caches every prefix, so no
 * tokens are reported as written to a cache: `cache_creation_input_tokens` is 0).
 */
export function toAnthropicUsage(usage: Pick<Usage, 'promptTokens' | 'cachedTokens'> & { completionTokens?: number }) {
  return {
    input_tokens: usage.promptTokens - usage.cachedTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: usage.cachedTokens,
    output_tokens: usage.completionTokens ?? 0,
  };
}

function parseInput(call: ToolCall): unknown {
  try {
    return JSON.parse(call.arguments);
  } catch {
    return {};
  }
}

/** A content block of a finished message. */
export type ContentBlock = { type: 'text'; text: string } | { type: 'thinking'; thinking: string; signature: string } | { type: 'tool_use'; id: string; name: string; input: unknown };

/** Builds the content of a non-streaming message as events arrive (thoughts, text and calls in order). */
export class MessageContent {
  readonly blocks: ContentBlock[] = [];

  thought(text: string): void {
    const last = this.blocks.at(-1);
    if (last?.type === 'thinking') last.thinking += text;
    else this.blocks.push({ type: 'thinking', thinking: text, signature: '' });
  }

  /** The thought ended: its signature (the sealed thought as it stands in the context). */
  sign(signature: string): void {
    const last = this.blocks.findLast((b) => b.type === 'thinking');
    if (last?.type === 'thinking') last.signature = signature;
  }

  text(text: string): void {
    const last = this.blocks.at(-1);
    if (last?.type === 'text') last.text += text;
    else this.blocks.push({ type: 'text', text });
  }

  toolUse(call: ToolCall): void {
    this.blocks.push({ type: 'tool_use', id: call.id, name: call.name, input: parseInput(call) });
  }
}

/** The non-streaming `message` object. */
export function toMessage(id: string, model: string, content: MessageContent, reason: FinishReason, usage: Usage) {
  return {
    id,
    type: 'message' as const,
    role: 'assistant' as const,
    model,
    content: content.blocks,
    stop_reason: toStopReason(reason),
    stop_sequence: null,
    usage: toAnthropicUsage(usage),
  };
}

const frame = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/**
 * The Messages streaming event sequence: `message_start`, then per content block
 * `content_block_start`, its deltas (`text_delta`, `thinking_delta` and `signature_delta`,
 * `input_json_delta`) and `content_block_stop`, then `message_delta` with the stop reason and
 * output tokens, and `message_stop`. `ping` while waiting. Each method returns SSE frames.
 */
export class MessagesStream {
  readonly #id: string;
  readonly #model: string;
  #index = -1;
  #open: 'text' | 'thinking' | undefined;
  #signature = '';

  constructor(id: string, model: string) {
    this.#id = id;
    this.#model = model;
  }

  start(promptTokens: number, cachedTokens: number): string {
    const message = { id: this.#id, type: 'message', role: 'assistant', model: this.#model, content: [], stop_reason: null, stop_sequence: null, usage: toAnthropicUsage({ promptTokens, cachedTokens }) };
    return frame('message_start', { message }) + frame('ping', {});
  }

  ping(): string {
    return frame('ping', {});
  }

  /** The thought ended: the open thinking block closes with this signature. */
  sign(signature: string): void {
    this.#signature = signature;
  }

  thought(text: string): string {
    let out = '';
    if (this.#open !== 'thinking') out += this.#close() + this.#begin('thinking', { type: 'thinking', thinking: '' });
    return out + frame('content_block_delta', { index: this.#index, delta: { type: 'thinking_delta', thinking: text } });
  }

  text(text: string): string {
    let out = '';
    if (this.#open !== 'text') out += this.#close() + this.#begin('text', { type: 'text', text: '' });
    return out + frame('content_block_delta', { index: this.#index, delta: { type: 'text_delta', text } });
  }

  toolUse(call: ToolCall): string {
    let out = this.#close();
    this.#index++;
    out += frame('content_block_start', { index: this.#index, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } });
    out += frame('content_block_delta', { index: this.#index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(parseInput(call)) } });
    return out + frame('content_block_stop', { index: this.#index });
  }

  finish(reason: FinishReason, outputTokens: number): string {
    return this.#close() + frame('message_delta', { delta: { stop_reason: toStopReason(reason), stop_sequence: null }, usage: { output_tokens: outputTokens } }) + frame('message_stop', {});
  }

  /** An error after the stream began: Anthropic's `error` event. */
  error(type: string, message: string): string {
    return frame('error', { error: { type, message } });
  }

  #begin(kind: 'text' | 'thinking', block: Record<string, unknown>): string {
    this.#index++;
    this.#open = kind;
    return frame('content_block_start', { index: this.#index, content_block: block });
  }

  #close(): string {
    if (!this.#open) return '';
    let out = '';
    if (this.#open === 'thinking') out += frame('content_block_delta', { index: this.#index, delta: { type: 'signature_delta', signature: this.#signature } });
    this.#signature = '';
    this.#open = undefined;
    return out + frame('content_block_stop', { index: this.#index });
  }
}

/**
 * Anthropic's error types by HTTP status; 503 from a full queue is its `overloaded_error` (529).
 * Other 4xx (405, 415, ...) are `invalid_request_error`, as Anthropic documents: `api_error` says
 * the server failed, and only a 5xx means that.
 */
export function toAnthropicError(status: number, message: string, isOverloaded: boolean): { status: number; body: { type: 'error'; error: { type: string; message: string } } } {
  const type =
    isOverloaded ? 'overloaded_error'
    : status === 401 ? 'authentication_error'
    : status === 403 ? 'permission_error'
    : status === 404 ? 'not_found_error'
    : status === 413 ? 'request_too_large'
    : status === 429 ? 'rate_limit_error'
    : status >= 500 ? 'api_error'
    : 'invalid_request_error';
  return { status: isOverloaded ? 529 : status, body: { type: 'error', error: { type, message } } };
}

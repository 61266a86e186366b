import type { FinishReason, GenerationEvent, ToolCall, Usage } from '../../core/types.js';
import { createId } from '../../utils/ids.js';
import type { ConversationItem, FunctionCallItem, MessageItem, OutputTextPart } from './items.js';

/** Lifecycle states of a response. */
export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';

/** The Responses API `response` object. */
export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  completed_at: number | null;
  status: ResponseStatus;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: string } | null;
  model: string;
  output: Array<MessageItem | FunctionCallItem>;
  usage: ResponseUsage | null;
  [echo: string]: unknown;
}

/** Responses `usage`. */
export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** One server event, serialized once; `type` is also the SSE event name. */
export interface WireEvent {
  readonly type: string;
  readonly json: string;
}

/** Responses `usage` from internal counts. */
export function toResponseUsage(usage: Usage): ResponseUsage {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/**
 * Turns one generation's internal events into Responses server events with consecutive
 * `sequence_number`s, and keeps the response object they describe. The same events serve
 * SSE and WebSocket; a non-streaming create returns `response` at the end.
 */
export class ResponseStream {
  readonly response: ResponseObject;
  #sequence = 0;
  #message: { item: MessageItem; index: number; part: OutputTextPart; deltaHead: string } | undefined;
  #isTerminal = false;

  constructor(response: ResponseObject) {
    this.response = response;
  }

  get isTerminal(): boolean {
    return this.#isTerminal;
  }

  /** `response.created` and `response.in_progress`. */
  start(): WireEvent[] {
    return [this.#event('response.created', { response: this.response }), this.#event('response.in_progress', { response: this.response })];
  }

  /** Events for one internal generation event. */
  push(event: GenerationEvent): WireEvent[] {
    switch (event.type) {
      case 'start':
        return [];
      case 'delta':
        return event.text.length === 0 ? [] : [...this.#openMessage(), this.#delta(event.text)];
      case 'tool_call':
        return [...this.#closeMessage('completed'), ...this.#functionCall(event.call)];
      case 'done':
        return this.#finish(event.finishReason, event.usage);
    }
  }

  /** Terminal `response.failed` for an error after the response was created. */
  fail(code: string, message: string): WireEvent[] {
    if (this.#isTerminal) return [];
    const events = this.#closeMessage('incomplete');
    this.response.status = 'failed';
    this.response.error = { code, message };
    return [...events, this.#terminal('response.failed')];
  }

  /** Every conversation item this response added (for storage and continuation). */
  outputItems(): ConversationItem[] {
    return this.response.output;
  }

  #openMessage(): WireEvent[] {
    if (this.#message) return [];
    const item: MessageItem = { id: createId('msg_'), type: 'message', role: 'assistant', status: 'in_progress', content: [] };
    const index = this.response.output.length;
    this.response.output.push(item);
    const part: OutputTextPart = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    const deltaHead = `,"item_id":${JSON.stringify(item.id)},"output_index":${index},"content_index":0,"delta":`;
    this.#message = { item, index, part, deltaHead };
    return [
      this.#event('response.output_item.added', { output_index: index, item }),
      this.#event('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part }),
    ];
  }

  /** The per-token event, spliced from a prefix built once per item. */
  #delta(text: string): WireEvent {
    const message = this.#message!;
    message.part.text += text;
    const json = `{"type":"response.output_text.delta","sequence_number":${this.#sequence++}${message.deltaHead}${JSON.stringify(text)},"logprobs":[]}`;
    return { type: 'response.output_text.delta', json };
  }

  #closeMessage(status: 'completed' | 'incomplete'): WireEvent[] {
    const message = this.#message;
    if (!message) return [];
    this.#message = undefined;
    const { item, index, part } = message;
    item.content.push(part);
    item.status = status;
    return [
      this.#event('response.output_text.done', { item_id: item.id, output_index: index, content_index: 0, text: part.text, logprobs: [] }),
      this.#event('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part }),
      this.#event('response.output_item.done', { output_index: index, item }),
    ];
  }

  #functionCall(call: ToolCall): WireEvent[] {
    const index = this.response.output.length;
    const item: FunctionCallItem = { id: createId('fc_'), type: 'function_call', call_id: call.id, name: call.name, arguments: '', status: 'in_progress' };
    this.response.output.push(item);
    const events = [
      this.#event('response.output_item.added', { output_index: index, item: { ...item } }),
      this.#event('response.function_call_arguments.delta', { item_id: item.id, output_index: index, delta: call.arguments }),
      this.#event('response.function_call_arguments.done', { item_id: item.id, output_index: index, name: call.name, arguments: call.arguments }),
    ];
    item.arguments = call.arguments;
    item.status = 'completed';
    events.push(this.#event('response.output_item.done', { output_index: index, item }));
    return events;
  }

  #finish(reason: FinishReason, usage: Usage): WireEvent[] {
    const isCut = reason === 'length' || reason === 'cancelled';
    const events = this.#closeMessage(isCut ? 'incomplete' : 'completed');
    this.response.usage = toResponseUsage(usage);
    if (reason === 'length') {
      this.response.status = 'incomplete';
      this.response.incomplete_details = { reason: 'max_output_tokens' };
    } else if (reason === 'cancelled') this.response.status = 'cancelled';
    else this.response.status = 'completed';
    return [...events, this.#terminal(this.response.status === 'completed' ? 'response.completed' : 'response.incomplete')];
  }

  #terminal(type: string): WireEvent {
    this.#isTerminal = true;
    this.response.completed_at = Math.floor(Date.now() / 1000);
    return this.#event(type, { response: this.response });
  }

  #event(type: string, fields: Record<string, unknown>): WireEvent {
    return { type, json: JSON.stringify({ type, sequence_number: this.#sequence++, ...fields }) };
  }
}

import type { FinishReason, GenerationEvent, ToolCall, Usage } from '../../core/types.js';
import { createId } from '../../utils/ids.js';
import type { CompactionItem, ConversationItem, CustomToolCallItem, FunctionCallItem, MessageItem, OutputTextPart, ReasoningItem } from './items.js';
import { toWireToolCall, type ToolTable } from '../tools.js';

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
  output: Array<MessageItem | FunctionCallItem | CustomToolCallItem | ReasoningItem | CompactionItem>;
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
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens ?? 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/**
 * Turns one generation's internal events into Responses server events with consecutive
 * `sequence_number`s, and keeps the response object they describe. The same events serve
 * SSE and WebSocket; a non-streaming create returns `response` at the end.
 */
/** What a stream needs besides the response object. */
export interface ResponseStreamOptions {
  /** Maps the model's tool calls back to namespaced functions and custom tools. */
  readonly tools?: ToolTable;
  /** Whether reasoning items on the wire carry `encrypted_content` (`include: ["reasoning.encrypted_content"]`). */
  readonly isReasoningIncluded: boolean;
  /** Seals a thought's exact text; the conversation always keeps the sealed form. */
  readonly sealReasoning: (raw: string) => string;
  /** Set for compaction: the generated text is the summary, returned as one sealed `compaction` item. */
  readonly sealCompaction?: (summary: string) => string;
}

export class ResponseStream {
  readonly response: ResponseObject;
  readonly #options: ResponseStreamOptions;
  #sequence = 0;
  #message: { item: MessageItem; index: number; part: OutputTextPart; deltaHead: string } | undefined;
  #reasoning: { item: ReasoningItem; index: number; text: string; deltaHead: string } | undefined;
  /** Sealed thoughts by item id, for the conversation even when the wire omits them. */
  readonly #sealed = new Map<string, string>();
  #isTerminal = false;
  /** Compaction only: the summary so far (never streamed as text). */
  #summary = '';
  #summaryThought = '';

  constructor(response: ResponseObject, options: ResponseStreamOptions) {
    this.response = response;
    this.#options = options;
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
    if (this.#options.sealCompaction) return this.#pushCompaction(event, this.#options.sealCompaction);
    switch (event.type) {
      case 'start':
      case 'progress':
        return [];
      case 'reasoning':
        // `raw` marks the end of the thought and carries its exact text (even an empty thought is kept).
        if (event.raw !== undefined) return [...this.#openReasoning(), ...this.#closeReasoning(event.raw, 'completed')];
        return event.text.length === 0 ? [] : [...this.#openReasoning(), this.#reasoningDelta(event.text)];
      case 'delta':
        return event.text.length === 0 ? [] : [...this.#closeReasoning(undefined, 'completed'), ...this.#openMessage(), this.#delta(event.text)];
      case 'tool_call':
        return [...this.#closeReasoning(undefined, 'completed'), ...this.#closeMessage('completed'), ...this.#toolCall(event.call)];
      case 'done':
        return [...this.#closeReasoning(event.reasoning, event.finishReason === 'stop' || event.finishReason === 'tool_calls' ? 'completed' : 'incomplete'), ...this.#finish(event.finishReason, event.usage)];
    }
  }

  /**
   * A keep-alive clients count as data: `response.in_progress` again, with Flint's `progress`
   * extension (prompt tokens evaluated so far, and the place in the queue while waiting).
   */
  progress(evaluatedTokens: number, totalTokens: number, queuePosition: number): WireEvent {
    return this.#event('response.in_progress', {
      response: this.response,
      progress: { evaluated_tokens: evaluatedTokens, total_tokens: totalTokens, queue_position: queuePosition },
    });
  }

  /** Terminal `response.failed` for an error after the response was created. */
  fail(code: string, message: string): WireEvent[] {
    if (this.#isTerminal) return [];
    const events = this.#closeMessage('incomplete');
    if (this.#reasoning) this.response.output.splice(this.#reasoning.index, 1); // a thought that cannot be sealed is dropped
    this.#reasoning = undefined;
    this.response.status = 'failed';
    this.response.error = { code, message };
    return [...events, this.#terminal('response.failed')];
  }

  /** Every conversation item this response added (for storage and continuation); thoughts always sealed. */
  outputItems(): ConversationItem[] {
    return this.response.output.map((item) => {
      if (item.type !== 'reasoning') return item;
      const sealed = this.#sealed.get(item.id);
      return sealed ? { ...item, encrypted_content: sealed } : item;
    });
  }

  /** Compaction: the answer text accumulates; at the end it becomes one sealed `compaction` item. */
  #pushCompaction(event: GenerationEvent, seal: (summary: string) => string): WireEvent[] {
    if (event.type === 'delta') this.#summary += event.text;
    else if (event.type === 'reasoning') this.#summaryThought += event.text;
    if (event.type !== 'done') return [];
    const events: WireEvent[] = [];
    if (event.finishReason !== 'cancelled') {
      // A model that spent the whole budget thinking still thought about the summary: use that.
      const summary = this.#summary.trim() || this.#summaryThought.trim();
      const item: CompactionItem = { id: createId('cmp_'), type: 'compaction', encrypted_content: seal(summary) };
      const index = this.response.output.length;
      this.response.output.push(item);
      events.push(this.#event('response.output_item.added', { output_index: index, item }), this.#event('response.output_item.done', { output_index: index, item }));
    }
    // A summary cut at the token cap is still a summary: compaction completes unless cancelled.
    return [...events, ...this.#finish(event.finishReason === 'length' ? 'stop' : event.finishReason, event.usage)];
  }

  #openReasoning(): WireEvent[] {
    if (this.#reasoning) return [];
    const item: ReasoningItem = { id: createId('rs_'), type: 'reasoning', summary: [], content: [], encrypted_content: null, status: 'in_progress' };
    const index = this.response.output.length;
    this.response.output.push(item);
    const deltaHead = `,"item_id":${JSON.stringify(item.id)},"output_index":${index},"content_index":0,"delta":`;
    this.#reasoning = { item, index, text: '', deltaHead };
    return [
      this.#event('response.output_item.added', { output_index: index, item }),
      this.#event('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'reasoning_text', text: '' } }),
    ];
  }

  #reasoningDelta(text: string): WireEvent {
    const reasoning = this.#reasoning!;
    reasoning.text += text;
    return { type: 'response.reasoning_text.delta', json: `{"type":"response.reasoning_text.delta","sequence_number":${this.#sequence++}${reasoning.deltaHead}${JSON.stringify(text)}}` };
  }

  /** Ends the open reasoning item; `raw` (the thought as it stands in the context) is sealed into it. */
  #closeReasoning(raw: string | undefined, status: 'completed' | 'incomplete'): WireEvent[] {
    const reasoning = this.#reasoning;
    if (!reasoning) return [];
    if (raw === undefined) return []; // the exact text follows (the worker sends it when the thought ends)
    this.#reasoning = undefined;
    const { item, index, text } = reasoning;
    const sealed = this.#options.sealReasoning(raw);
    this.#sealed.set(item.id, sealed);
    const part = { type: 'reasoning_text' as const, text: text.trim() };
    item.content = [part];
    item.status = status;
    if (this.#options.isReasoningIncluded) item.encrypted_content = sealed;
    return [
      this.#event('response.reasoning_text.done', { item_id: item.id, output_index: index, content_index: 0, text: part.text }),
      this.#event('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part }),
      this.#event('response.output_item.done', { output_index: index, item }),
    ];
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

  #toolCall(modelCall: ToolCall): WireEvent[] {
    const index = this.response.output.length;
    const call = toWireToolCall(modelCall, this.#options.tools);
    if (call.type === 'custom') {
      const item: CustomToolCallItem = { id: createId('ctc_'), type: 'custom_tool_call', call_id: call.callId, name: call.name, input: '', status: 'in_progress' };
      this.response.output.push(item);
      const events = [
        this.#event('response.output_item.added', { output_index: index, item: { ...item } }),
        this.#event('response.custom_tool_call_input.delta', { item_id: item.id, output_index: index, delta: call.input }),
        this.#event('response.custom_tool_call_input.done', { item_id: item.id, output_index: index, input: call.input }),
      ];
      item.input = call.input;
      item.status = 'completed';
      events.push(this.#event('response.output_item.done', { output_index: index, item }));
      return events;
    }
    const item: FunctionCallItem = {
      id: createId('fc_'),
      type: 'function_call',
      call_id: call.callId,
      name: call.name,
      ...(call.namespace ? { namespace: call.namespace } : {}),
      arguments: '',
      status: 'in_progress',
    };
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

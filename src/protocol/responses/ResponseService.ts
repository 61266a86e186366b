import { FlintError } from '../../errors/FlintError.js';
import { toWireError } from '../../errors/toWireError.js';
import type { Gateway } from '../../core/Gateway.js';
import type { ResponseStore, StoredResponse } from '../../core/ResponseStore.js';
import type { ChatMessage, GenerationEvent, RequestId, SlotPlacement } from '../../core/types.js';
import { TimedEvents, timedOut } from '../../core/TimedEvents.js';
import type { Sealer } from '../../utils/Sealer.js';
import { resolveModelName } from '../models.js';
import type { HostedToolPolicy } from '../tools.js';
import { toChatMessages, type ConversationItem, type InputItem, type ItemOpener } from './items.js';
import { parseResponseRequest, type ParsedResponseRequest } from './parseResponseRequest.js';
import { ResponseStream, type ResponseObject, type WireEvent } from './ResponseStream.js';
import { toResponseObject } from './toResponseObject.js';

/** The conversation a response continues from: its input and output items. */
export interface Conversation {
  readonly inputItems: readonly ConversationItem[];
  readonly outputItems: readonly ConversationItem[];
}

/** Per-call options of `run`. */
export interface RunOptions {
  readonly signal: AbortSignal;
  /** Non-streaming callers get failures before generation as thrown errors (HTTP 4xx), not `response.failed`. */
  readonly isStream: boolean;
  /** Slot-affinity key; defaults to `prompt_cache_key`, then the previous response id. */
  readonly cacheKey?: string;
  /** The slot the client's previous request of this turn ran on (from a verified turn-state token). */
  readonly slotHint?: SlotPlacement;
  /** Where `previous_response_id` is looked up first (a WebSocket's connection-local cache). */
  readonly findLocal?: (id: string) => Conversation | undefined;
  /** Called with the finished response and its conversation (e.g. to cache it on a connection). */
  readonly onFinished?: (response: ResponseObject, conversation: Conversation) => void;
  /** Sees every internal generation event (metrics, logs). */
  readonly onGenerationEvent?: (event: GenerationEvent) => void;
  /** Called once the response id exists, before generation (WS bookkeeping). */
  readonly onCreated?: (response: ResponseObject) => void;
}

/** Settings of the Responses service (config `responses` and `server.progressEventMs`). */
export interface ResponseServiceOptions {
  readonly acceptAnyModelName: boolean;
  readonly hostedTools: HostedToolPolicy;
  /** How long a stream holds its status back waiting for admission, and the keep-alive interval after. */
  readonly progressEventMs: number;
  /** Token cap of a compaction summary. */
  readonly compactionMaxTokens: number;
  /** Seals reasoning and compaction contents handed to clients. */
  readonly sealer: Sealer;
  /** Called when a conversation was compacted into a summary. */
  readonly onCompacted?: () => void;
  /** Called for each hosted tool left out of a prompt. */
  readonly onHostedToolIgnored?: (type: string) => void;
}

/** Seal purposes: a value sealed for one never opens as the other. */
const sealPurpose = { reasoning: 'flint.reasoning.v1', compaction: 'flint.compaction.v1', turnState: 'flint.turn-state.v1' } as const;

/** What the model is asked when a conversation is compacted. */
const compactionInstruction =
  'Summarize the conversation above for your own later use: the task, decisions made, the current state of the work ' +
  '(files, commands, results), and what remains to be done. Be complete but concise; write only the summary.';

interface InFlight {
  readonly controller: AbortController;
  readonly done: Promise<ResponseObject | undefined>;
}

/**
 * The Responses API independent of transport: resolves `previous_response_id`, renders the
 * conversation, runs the generation and yields server events; stores results with
 * `store: true`; retrieves, deletes, cancels and pages input items. HTTP (SSE or JSON) and the
 * WebSocket mode both drive it.
 */
export class ResponseService {
  readonly #gateway: Gateway;
  readonly #store: ResponseStore;
  readonly #options: ResponseServiceOptions;
  readonly #opener: ItemOpener;
  readonly #inFlight = new Map<string, InFlight>();

  constructor(gateway: Gateway, store: ResponseStore, options: ResponseServiceOptions) {
    this.#gateway = gateway;
    this.#store = store;
    this.#options = options;
    const { sealer } = options;
    this.#opener = {
      openReasoning: (sealed) => sealer.open(sealPurpose.reasoning, sealed),
      openCompaction: (sealed) => sealer.open(sealPurpose.compaction, sealed),
    };
  }

  /** Checks a create body; throws 400/404 FlintErrors. */
  parse(body: unknown): ParsedResponseRequest {
    const model = this.#gateway.model;
    if (!model) throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: 'model loading', retryAfterS: 2 } });
    const parsed = parseResponseRequest(body, (name) => resolveModelName(name, model, this.#options.acceptAnyModelName), { hostedTools: this.#options.hostedTools });
    for (const type of parsed.toolTable.ignoredHosted) this.#options.onHostedToolIgnored?.(type);
    return parsed;
  }

  /**
   * Runs one response. Errors found before `response.created` is yielded are thrown; later
   * ones become `response.failed`. The return value is the final response object.
   */
  async *run(parsed: ParsedResponseRequest, options: RunOptions): AsyncGenerator<WireEvent, ResponseObject> {
    const previous = parsed.previousResponseId ? this.#findPrevious(parsed.previousResponseId, options.findLocal) : undefined;
    const input = this.#resolveReferences(parsed.input, previous);
    const inputItems = previous ? [...previous.inputItems, ...previous.outputItems, ...input] : input;
    const isCompaction = parsed.isCompactionRequested;
    const messages = this.#render(parsed, inputItems);
    const response = toResponseObject(parsed);
    const stream = new ResponseStream(response, {
      tools: parsed.toolTable,
      isReasoningIncluded: parsed.isReasoningIncluded,
      sealReasoning: (raw) => this.#options.sealer.seal(sealPurpose.reasoning, raw),
      sealCompaction: isCompaction ? (summary) => this.#options.sealer.seal(sealPurpose.compaction, summary) : undefined,
    });
    const controller = new AbortController();
    const signal = AbortSignal.any([options.signal, controller.signal]);
    let finish: (r: ResponseObject | undefined) => void = () => undefined;
    this.#inFlight.set(response.id, { controller, done: new Promise((resolve) => (finish = resolve)) });
    options.onCreated?.(response);
    try {
      const b = parsed.body;
      const maxTokens = b.max_output_tokens ?? undefined;
      // Disposed on every way out of this generator (a throw while rendering or storing included): the slot is freed.
      await using generation = this.#gateway.start(
          {
            id: response.id as RequestId,
            model: parsed.model,
            input: { type: 'chat', messages },
            inputParam: 'input',
            sampling: { temperature: b.temperature ?? undefined, topP: b.top_p ?? undefined, seed: b.seed ?? undefined },
            maxTokens: isCompaction ? Math.min(maxTokens ?? Infinity, this.#options.compactionMaxTokens) : maxTokens,
            stop: [],
            cacheKey: options.cacheKey ?? b.prompt_cache_key ?? parsed.previousResponseId,
            slotHint: options.slotHint,
            // A summary is text: no tools, but the same tool list keeps the prompt a cached prefix.
            tools: parsed.tools,
            toolChoice: isCompaction ? 'none' : parsed.toolChoice,
            parallelToolCalls: parsed.parallelToolCalls,
            responseFormat: isCompaction ? undefined : parsed.responseFormat,
            isWarmupOnly: !parsed.isGenerating,
          },
          { signal },
      );
      const events = new TimedEvents(generation.events);
      // Admission: what fails before the generation starts is thrown (an HTTP status, a WebSocket
      // error event). A stream still waiting after progressEventMs is created anyway, and then
      // kept alive with progress events; a non-streaming request waits as long as it takes.
      const patienceMs = options.isStream ? this.#options.progressEventMs : undefined;
      const startBy = performance.now() + (patienceMs ?? 0);
      let progress = { evaluated: 0, total: 0, position: 0 };
      let pending: IteratorResult<GenerationEvent> | typeof timedOut | undefined;
      for (;;) {
        pending = await events.next(patienceMs === undefined ? undefined : startBy - performance.now());
        if (pending === timedOut || pending.done || pending.value.type !== 'progress') break;
        progress = toProgress(pending.value, progress);
      }
      if (options.isStream) yield* stream.start();
      else stream.start();
      let hasOutput = false;
      try {
        for (;;) {
          // Keep-alive waits only until output flows: no timer on the per-token path.
          const next = pending ?? (await events.next(options.isStream && !hasOutput ? this.#options.progressEventMs : undefined));
          pending = undefined;
          if (next === timedOut) {
            yield stream.progress(progress.evaluated, progress.total, progress.position);
            continue;
          }
          if (next.done) break;
          const event = next.value;
          if (event.type === 'progress') progress = toProgress(event, progress);
          else if (event.type !== 'start') hasOutput = true;
          options.onGenerationEvent?.(event);
          yield* stream.push(event);
        }
      } catch (err) {
        const wire = toWireError(err);
        yield* stream.fail(wire.body.error.code ?? 'server_error', wire.body.error.message);
      }
      if (isCompaction && response.output.some((item) => item.type === 'compaction')) this.#options.onCompacted?.();
      const conversation: Conversation = { inputItems, outputItems: stream.outputItems() };
      if (parsed.isStored) this.#save(response, conversation);
      options.onFinished?.(response, conversation);
      return response;
    } finally {
      this.#inFlight.delete(response.id);
      finish(stream.isTerminal ? response : undefined);
    }
  }

  /**
   * `POST /v1/responses/compact`: summarizes the conversation and returns the window that replaces
   * it: the user's messages, then one sealed `compaction` item. Failures are thrown (HTTP errors).
   */
  async compact(parsed: ParsedResponseRequest, signal: AbortSignal): Promise<{ id: string; object: 'response.compaction'; created_at: number; output: ConversationItem[]; usage: unknown }> {
    let items: readonly ConversationItem[] = [];
    const run = this.run({ ...parsed, isCompactionRequested: true, isStored: false, isStream: false }, { signal, isStream: false, onFinished: (_, conversation) => (items = conversation.inputItems) });
    let next = await run.next();
    while (!next.done) next = await run.next();
    const response = next.value;
    const compaction = response.output.find((item) => item.type === 'compaction');
    if (response.status === 'failed' || !compaction) {
      throw new FlintError('FLINT_ERR_INTERNAL', { details: { detail: response.error?.message ?? 'no summary was produced' } });
    }
    const userMessages = items.filter((item) => item.type === 'message' && item.role === 'user');
    return { id: response.id, object: 'response.compaction', created_at: response.created_at, output: [...userMessages, compaction], usage: response.usage };
  }

  /**
   * Replaces `item_reference`s with the items they name: from the conversation being continued,
   * else from stored responses. An unknown id is a 400 naming the item.
   */
  #resolveReferences(input: readonly InputItem[], previous: Conversation | undefined): ConversationItem[] {
    return input.map((item, i) => {
      if (item.type !== 'item_reference') return item;
      const known = previous && [...previous.inputItems, ...previous.outputItems].find((candidate) => candidate.id === item.id);
      const found = known ?? (this.#store.findItem(item.id) as unknown as ConversationItem | undefined);
      if (!found) throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: `input[${i}].id`, details: { detail: `No stored item with id '${item.id}' was found for the item_reference at input[${i}].` } });
      return found;
    });
  }

  /** The conversation as chat messages; a compaction request adds the summary instruction last. */
  #render(parsed: ParsedResponseRequest, items: readonly ConversationItem[]): ChatMessage[] {
    const messages = toChatMessages(parsed.instructions, items, this.#opener);
    if (parsed.isCompactionRequested) messages.push({ role: 'user', content: compactionInstruction });
    return messages;
  }

  /** An opaque, tamper-proof token naming the slot that served a request (`x-codex-turn-state`). */
  toTurnState(placement: SlotPlacement): string {
    return this.#options.sealer.seal(sealPurpose.turnState, `${placement.worker}.${placement.slot}`);
  }

  /** The slot a turn-state token names; undefined for tokens Flint did not make. */
  fromTurnState(token: string | undefined): SlotPlacement | undefined {
    if (!token || token.length > 512) return undefined;
    const match = /^(\d{1,4})\.(\d{1,4})$/.exec(this.#options.sealer.open(sealPurpose.turnState, token) ?? '');
    return match ? { worker: Number(match[1]), slot: Number(match[2]) } : undefined;
  }

  /** `GET /v1/responses/{id}`. */
  retrieve(id: string): Record<string, unknown> {
    return this.#stored(id).response;
  }

  /** `DELETE /v1/responses/{id}`. */
  delete(id: string): { id: string; object: 'response.deleted'; deleted: true } {
    if (!this.#store.delete(id)) throw new FlintError('FLINT_ERR_RESPONSE_NOT_FOUND', { details: { id } });
    return { id, object: 'response.deleted', deleted: true };
  }

  /** `POST /v1/responses/{id}/cancel`: stops an in-flight response and returns it as cancelled. */
  async cancel(id: string): Promise<Record<string, unknown>> {
    const running = this.#inFlight.get(id);
    if (running) {
      running.controller.abort(new DOMException('cancelled by request', 'AbortError'));
      const response = await running.done;
      if (response) return response;
    }
    const stored = this.#stored(id).response;
    if (stored.status !== 'cancelled' && stored.status !== 'in_progress' && stored.status !== 'queued') {
      throw new FlintError('FLINT_ERR_RESPONSE_NOT_CANCELLABLE', { details: { id, status: String(stored.status) } });
    }
    return stored;
  }

  /** `GET /v1/responses/{id}/input_items`, paginated like every OpenAI list. */
  inputItems(id: string, query: { limit?: number; order?: 'asc' | 'desc'; after?: string; before?: string }) {
    const items = [...this.#stored(id).inputItems] as Array<Record<string, unknown> & { id: string }>;
    if (query.order !== 'asc') items.reverse();
    let start = 0;
    let end = items.length;
    if (query.after) start = indexOrThrow(items, query.after, 'after') + 1;
    if (query.before) end = indexOrThrow(items, query.before, 'before');
    const limit = query.limit ?? 20;
    const page = items.slice(start, Math.max(start, end)).slice(0, limit);
    return { object: 'list' as const, data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: start + page.length < end };
  }

  #findPrevious(id: string, findLocal: RunOptions['findLocal']): Conversation {
    const local = findLocal?.(id);
    if (local) return local;
    const stored = this.#store.get(id);
    if (!stored) throw new FlintError('FLINT_ERR_PREVIOUS_RESPONSE_NOT_FOUND', { param: 'previous_response_id', details: { id } });
    return { inputItems: stored.inputItems as unknown as ConversationItem[], outputItems: stored.outputItems as unknown as ConversationItem[] };
  }

  #stored(id: string): StoredResponse {
    const stored = this.#store.get(id);
    if (!stored) throw new FlintError('FLINT_ERR_RESPONSE_NOT_FOUND', { details: { id } });
    return stored;
  }

  #save(response: ResponseObject, conversation: Conversation): void {
    this.#store.save({
      id: response.id,
      createdAtS: response.created_at,
      response: response as unknown as Record<string, unknown>,
      inputItems: conversation.inputItems as unknown as Array<Record<string, unknown>>,
      outputItems: conversation.outputItems as unknown as Array<Record<string, unknown>>,
    });
  }
}

function toProgress(event: Extract<GenerationEvent, { type: 'progress' }>, last: { evaluated: number; total: number; position: number }) {
  // The queue reports positions, the worker evaluated tokens: keep the latest of each.
  return event.queuePosition > 0 ? { ...last, position: event.queuePosition } : { evaluated: event.evaluatedTokens, total: event.totalTokens, position: 0 };
}

function indexOrThrow(items: Array<{ id: string }>, id: string, param: string): number {
  const at = items.findIndex((item) => item.id === id);
  if (at === -1) throw new FlintError('FLINT_ERR_INVALID_VALUE', { param, details: { detail: `No input item with id '${id}'.` } });
  return at;
}

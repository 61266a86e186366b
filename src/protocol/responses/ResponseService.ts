import { FlintError } from '../../errors/FlintError.js';
import { toWireError } from '../../errors/toWireError.js';
import type { Gateway } from '../../core/Gateway.js';
import type { ResponseStore, StoredResponse } from '../../core/ResponseStore.js';
import type { GenerationEvent, RequestId } from '../../core/types.js';
import { resolveModelName } from '../models.js';
import { toChatMessages, type ConversationItem } from './items.js';
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
  /** Where `previous_response_id` is looked up first (a WebSocket's connection-local cache). */
  readonly findLocal?: (id: string) => Conversation | undefined;
  /** Called with the finished response and its conversation (e.g. to cache it on a connection). */
  readonly onFinished?: (response: ResponseObject, conversation: Conversation) => void;
  /** Sees every internal generation event (metrics, logs). */
  readonly onGenerationEvent?: (event: GenerationEvent) => void;
  /** Called once the response id exists, before generation (WS bookkeeping). */
  readonly onCreated?: (response: ResponseObject) => void;
}

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
  readonly #acceptAnyModelName: boolean;
  readonly #inFlight = new Map<string, InFlight>();

  constructor(gateway: Gateway, store: ResponseStore, acceptAnyModelName: boolean) {
    this.#gateway = gateway;
    this.#store = store;
    this.#acceptAnyModelName = acceptAnyModelName;
  }

  /** Checks a create body; throws 400/404 FlintErrors. */
  parse(body: unknown): ParsedResponseRequest {
    const model = this.#gateway.model;
    if (!model) throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: 'model loading', retryAfterS: 2 } });
    return parseResponseRequest(body, (name) => resolveModelName(name, model, this.#acceptAnyModelName));
  }

  /**
   * Runs one response. Errors found before `response.created` is yielded are thrown; later
   * ones become `response.failed`. The return value is the final response object.
   */
  async *run(parsed: ParsedResponseRequest, options: RunOptions): AsyncGenerator<WireEvent, ResponseObject> {
    const previous = parsed.previousResponseId ? this.#findPrevious(parsed.previousResponseId, options.findLocal) : undefined;
    const inputItems = previous ? [...previous.inputItems, ...previous.outputItems, ...parsed.input] : parsed.input;
    const messages = toChatMessages(parsed.instructions, inputItems);
    const response = toResponseObject(parsed);
    const stream = new ResponseStream(response);
    const controller = new AbortController();
    const signal = AbortSignal.any([options.signal, controller.signal]);
    let finish: (r: ResponseObject | undefined) => void = () => undefined;
    this.#inFlight.set(response.id, { controller, done: new Promise((resolve) => (finish = resolve)) });
    options.onCreated?.(response);
    try {
      const b = parsed.body;
      const events = this.#gateway.generate(
        {
          id: response.id as RequestId,
          model: parsed.model,
          input: { type: 'chat', messages },
          inputParam: 'input',
          sampling: { temperature: b.temperature ?? undefined, topP: b.top_p ?? undefined, seed: b.seed ?? undefined },
          maxTokens: b.max_output_tokens ?? undefined,
          stop: [],
          cacheKey: options.cacheKey ?? b.prompt_cache_key ?? parsed.previousResponseId,
          tools: parsed.tools,
          toolChoice: parsed.toolChoice,
          parallelToolCalls: parsed.parallelToolCalls,
          responseFormat: parsed.responseFormat,
          isWarmupOnly: !parsed.isGenerating,
        },
        { signal },
      )[Symbol.asyncIterator]();
      let isStarted = false;
      if (options.isStream) yield* stream.start();
      try {
        for (let next = await events.next(); !next.done; next = await events.next()) {
          if (!isStarted) {
            isStarted = true;
            if (!options.isStream) stream.start();
          }
          options.onGenerationEvent?.(next.value);
          yield* stream.push(next.value);
        }
      } catch (err) {
        if (!options.isStream && !isStarted) throw err;
        const wire = toWireError(err);
        yield* stream.fail(wire.body.error.code ?? 'server_error', wire.body.error.message);
      }
      const conversation: Conversation = { inputItems, outputItems: stream.outputItems() };
      if (parsed.isStored) this.#save(response, conversation);
      options.onFinished?.(response, conversation);
      return response;
    } finally {
      this.#inFlight.delete(response.id);
      finish(stream.isTerminal ? response : undefined);
    }
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

function indexOrThrow(items: Array<{ id: string }>, id: string, param: string): number {
  const at = items.findIndex((item) => item.id === id);
  if (at === -1) throw new FlintError('FLINT_ERR_INVALID_VALUE', { param, details: { detail: `No input item with id '${id}'.` } });
  return at;
}

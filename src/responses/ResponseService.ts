import type { Gateway } from '../core/Gateway.js';
import type { GenerationRun } from '../core/GenerationRun.js';
import type { ResponseStore } from '../core/ResponseStore.js';
import type { ChatMessage, SlotPlacement } from '../core/types.js';
import { FlintError } from '../errors/FlintError.js';
import { resolveModelName } from '../protocol/models.js';
import { toChatMessages, type ConversationItem, type ItemOpener } from '../protocol/responses/items.js';
import { parseResponseRequest, type ParsedResponseRequest } from '../protocol/responses/parseResponseRequest.js';
import { ResponseStream, type ResponseObject, type WireEvent } from '../protocol/responses/ResponseStream.js';
import { toGenerateRequest, type ResponsesRouting } from '../protocol/responses/toGenerateRequest.js';
import { toResponseObject } from '../protocol/responses/toResponseObject.js';
import type { HostedToolPolicy } from '../protocol/tools.js';
import type { Sealer } from '../utils/Sealer.js';
import { StoredResponses, type Conversation } from './StoredResponses.js';

export type { Conversation } from './StoredResponses.js';

/** Per-call options of `run`. */
export interface RunOptions extends ResponsesRouting {
  /** Who asks (a hash of the API key): stored responses and `previous_response_id` are theirs only. */
  readonly tenant: string;
  /** Non-streaming callers get failures before generation as thrown errors (HTTP 4xx), not `response.failed`. */
  readonly isStream: boolean;
  /** Where `previous_response_id` is looked up first (a WebSocket's connection-local cache). */
  readonly findLocal?: (id: string) => Conversation | undefined;
  /** Called with the finished response and its conversation (e.g. to cache it on a connection). */
  readonly onFinished?: (response: ResponseObject, conversation: Conversation) => void;
  /** Called once the response id exists, before generation (WS bookkeeping). */
  readonly onCreated?: (response: ResponseObject) => void;
}

/** Settings of the Responses service (config `responses`). */
export interface ResponseServiceOptions {
  readonly acceptAnyModelName: boolean;
  readonly hostedTools: HostedToolPolicy;
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
  readonly run: GenerationRun;
  readonly tenant: string;
  readonly done: Promise<ResponseObject | undefined>;
}

/**
 * The Responses API on top of one GenerationRun, for HTTP (SSE or JSON) and the WebSocket mode
 * alike: resolves `previous_response_id` and item references, renders the conversation, yields
 * the server events of the run, stores results with `store: true`, cancels in-flight responses,
 * compacts conversations and makes turn-state tokens.
 */
export class ResponseService {
  /** Stored responses: retrieve, delete, input items. */
  readonly stored: StoredResponses;
  readonly #gateway: Gateway;
  readonly #options: ResponseServiceOptions;
  readonly #opener: ItemOpener;
  readonly #inFlight = new Map<string, InFlight>();

  constructor(gateway: Gateway, store: ResponseStore, options: ResponseServiceOptions) {
    this.#gateway = gateway;
    this.stored = new StoredResponses(store);
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
   * Runs one response on `run`. Errors before `response.created` is yielded are thrown (reported
   * by the run); later ones become `response.failed`. The return value is the final response object.
   */
  async *run(parsed: ParsedResponseRequest, run: GenerationRun, options: RunOptions): AsyncGenerator<WireEvent, ResponseObject> {
    const previous = parsed.previousResponseId ? this.stored.previous(parsed.previousResponseId, options.tenant, options.findLocal) : undefined;
    const input = this.stored.resolveReferences(parsed.input, previous, options.tenant);
    const inputItems = previous ? [...previous.inputItems, ...previous.outputItems, ...input] : input;
    const isCompaction = parsed.isCompactionRequested;
    const messages = this.#render(parsed, inputItems);
    const response = toResponseObject(parsed);
    // The session a chain belongs to: the transport's key (session header, WebSocket lane), the
    // body's prompt_cache_key, else the lineage of the response it continues, so every turn of a
    // keyless chain keeps its first response's key (slot affinity and member hashing alike). A
    // stored keyless first turn runs under its own id already: its slot is pinned for turn 2.
    const sessionKey = options.cacheKey ?? parsed.body.prompt_cache_key ?? previous?.sessionKey ?? parsed.previousResponseId ?? (parsed.isStored ? response.id : undefined);
    const stream = new ResponseStream(response, {
      tools: parsed.toolTable,
      isReasoningIncluded: parsed.isReasoningIncluded,
      sealReasoning: (raw) => this.#options.sealer.seal(sealPurpose.reasoning, raw),
      sealCompaction: isCompaction ? (summary) => this.#options.sealer.seal(sealPurpose.compaction, summary) : undefined,
    });
    let finish: (r: ResponseObject | undefined) => void = () => undefined;
    this.#inFlight.set(response.id, { run, tenant: options.tenant, done: new Promise((resolve) => (finish = resolve)) });
    options.onCreated?.(response);
    try {
      await run.start(this.#gateway, toGenerateRequest(parsed, response.id, messages, { ...options, cacheKey: sessionKey }, this.#options.compactionMaxTokens));
      if (options.isStream) yield* stream.start();
      else stream.start();
      try {
        for await (const event of run.events()) {
          if (event.type === 'tick') yield stream.progress(event.progress.evaluatedTokens, event.progress.totalTokens, event.progress.queuePosition);
          else yield* stream.push(event);
        }
        run.finish(200);
      } catch (err) {
        const wire = run.failInStream(err);
        yield* stream.fail(wire.body.error.code ?? 'server_error', wire.body.error.message);
      }
      if (isCompaction && response.output.some((item) => item.type === 'compaction')) this.#options.onCompacted?.();
      const conversation: Conversation = { inputItems, outputItems: stream.outputItems(), sessionKey: sessionKey ?? response.id };
      // A failed response stays retrievable, but its conversation is not kept: it cannot be continued.
      if (parsed.isStored) this.stored.save(response, response.status === 'failed' ? { inputItems: [], outputItems: [] } : conversation, options.tenant);
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
  async compact(parsed: ParsedResponseRequest, run: GenerationRun, tenant: string): Promise<{ id: string; object: 'response.compaction'; created_at: number; output: ConversationItem[]; usage: unknown }> {
    let items: readonly ConversationItem[] = [];
    const events = this.run({ ...parsed, isCompactionRequested: true, isStored: false, isStream: false }, run, { tenant, isStream: false, onFinished: (_, conversation) => (items = conversation.inputItems) });
    let next = await events.next();
    while (!next.done) next = await events.next();
    const response = next.value;
    const compaction = response.output.find((item) => item.type === 'compaction');
    if (response.status === 'failed' || !compaction) {
      throw new FlintError('FLINT_ERR_INTERNAL', { details: { detail: response.error?.message ?? 'no summary was produced' } });
    }
    const userMessages = items.filter((item) => item.type === 'message' && item.role === 'user');
    return { id: response.id, object: 'response.compaction', created_at: response.created_at, output: [...userMessages, compaction], usage: response.usage };
  }

  /** `POST /v1/responses/{id}/cancel`: stops an in-flight response and returns it as cancelled. */
  async cancel(id: string, tenant: string): Promise<Record<string, unknown>> {
    const running = this.#inFlight.get(id);
    if (running?.tenant === tenant) {
      running.run.stop('cancelled');
      const response = await running.done;
      if (response) return response;
    }
    const stored = this.stored.retrieve(id, tenant);
    if (stored.status !== 'cancelled' && stored.status !== 'in_progress' && stored.status !== 'queued') {
      throw new FlintError('FLINT_ERR_RESPONSE_NOT_CANCELLABLE', { details: { id, status: String(stored.status) } });
    }
    return stored;
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

  /** The conversation as chat messages; a compaction request adds the summary instruction last. */
  #render(parsed: ParsedResponseRequest, items: readonly ConversationItem[]): ChatMessage[] {
    const messages = toChatMessages(parsed.instructions, items, this.#opener);
    if (parsed.isCompactionRequested) messages.push({ role: 'user', content: compactionInstruction });
    return messages;
  }
}

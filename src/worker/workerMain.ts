/**
 * Worker process entry: loads one model, creates one context with a sequence per slot and
 * serves generation requests from the parent over Node's IPC channel. Only this file and
 * main.ts call process.exit.
 */
import { FlintError } from '../errors/FlintError.js';
import type { ChatMessage, GenerateRequest } from '../core/types.js';
import { IPC_VERSION, type ParentMessage, type WorkerMessage } from '../ipc/messages.js';
import type { RenderedChat } from './ChatRenderer.js';
import { Engine } from './Engine.js';
import { TokenizeAborted } from './tokenizeInChunks.js';
import { SavedPrefixes } from './SavedPrefixes.js';
import { Slot } from './Slot.js';

let engine: Engine | undefined;
let slots: Slot[] = [];
let saved: SavedPrefixes | undefined;
const running = new Map<string, AbortController>();
/** Per slot: the messages of its last chat request (the base the parent sends later tails against). */
const slotMessages: Array<readonly ChatMessage[] | undefined> = [];
/** Per slot: its last rendered chat prompt, which the next one may continue. */
const slotPrompts: Array<RenderedChat | undefined> = [];

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function init(message: Extract<ParentMessage, { type: 'init' }>): Promise<void> {
  if (message.version !== IPC_VERSION) {
    send({ type: 'fatal', message: `ipc version mismatch: parent ${message.version}, worker ${IPC_VERSION}` });
    process.exit(1);
  }
  try {
    engine = await Engine.create(message.settings, (level, text) => {
      if (text.length > 0) process.stderr.write(`[llama.cpp ${level}] ${text}\n`);
    });
    const { context, model } = engine;
    const savedPrefixes = new SavedPrefixes(message.settings.savedPrefixBytes);
    saved = savedPrefixes;
    const options = { batchSize: context.batchSize, saved: savedPrefixes, minSavedTokens: message.settings.minSavedPrefixTokens };
    slots = Array.from({ length: message.settings.slots }, (_, i) => new Slot(i, context.getSequence(), model, options));
    send({ type: 'ready', version: IPC_VERSION, facts: engine.facts() });
  } catch (err) {
    send({ type: 'fatal', message: `model load failed: ${(err as Error).message}` });
    process.exit(1);
  }
}

async function generate(message: Extract<ParentMessage, { type: 'generate' }>): Promise<void> {
  const { id } = message;
  let request: GenerateRequest;
  const controller = new AbortController();
  running.set(id, controller);
  try {
    request = withBase(message);
    const slot = slots[message.slot];
    if (!engine || !slot) throw new Error(`slot ${message.slot} does not exist`);
    // The request's cap, else the configured default, never above the ceiling.
    const { defaultMaxTokens, maxOutputTokens: ceiling } = engine.settings;
    const asked = request.maxTokens ?? (defaultMaxTokens > 0 ? defaultMaxTokens : undefined);
    if (ceiling > 0 && (asked === undefined || asked > ceiling)) request = { ...request, maxTokens: ceiling };
    const prompt = await engine.prepare(request, controller.signal, slotPrompts[message.slot]);
    if (prompt.render) slotPrompts[message.slot] = prompt.render.rendered;
    const plan = await engine.plan(request, prompt);
    const render = prompt.render && { mode: prompt.render.mode, reason: prompt.render.reason, ms: prompt.render.ms };
    const deltas = new DeltaBuffer(id, engine.settings.streamCoalesceMs);
    const result = await slot.generate(request, prompt, plan, engine.settings.defaultMaxTokens, controller.signal, {
      onStarted: (promptTokens, cachedTokens, restoredTokens) => send({ type: 'started', id, promptTokens, cachedTokens, restoredTokens, render }),
      onDelta: (text, tokens) => deltas.add(text, tokens),
      onReasoning: (text, tokens) => deltas.addReasoning(text, tokens),
      onReasoningEnd: (raw) => {
        deltas.flush();
        send({ type: 'reasoning', id, text: '', tokens: 0, raw });
      },
      onProgress: (evaluatedTokens, totalTokens) => send({ type: 'progress', id, evaluatedTokens, totalTokens }),
      onToolCall: (call) => {
        deltas.flush();
        send({ type: 'tool_call', id, call });
      },
    });
    deltas.flush();
    send({ type: 'done', id, ...result, savedPrefixBytes: saved?.bytes ?? 0 });
  } catch (err) {
    if (err instanceof TokenizeAborted) {
      // Cancelled while its prompt was being tokenized: nothing ran on the slot.
      send({ type: 'done', id, finishReason: 'cancelled', usage: { promptTokens: 0, cachedTokens: 0, completionTokens: 0 }, timings: { prefillMs: 0, decodeMs: 0 }, savedPrefixBytes: saved?.bytes ?? 0 });
    } else if (err instanceof FlintError) {
      const details: Record<string, string | number> = {};
      for (const [k, v] of Object.entries(err.details)) if (v !== undefined) details[k] = v;
      send({ type: 'failed', id, failure: { code: err.code, param: err.param ?? undefined, details, message: err.message } });
    } else {
      process.stderr.write(`generation ${id} failed: ${(err as Error)?.stack ?? String(err)}\n`);
      send({ type: 'failed', id, failure: { code: 'FLINT_ERR_INTERNAL', message: (err as Error)?.message ?? String(err) } });
    }
  } finally {
    running.delete(id);
  }
}

/**
 * Sends deltas off the decode path. node-llama-cpp dispatches the next decode from a
 * setImmediate callback queued after this token's, so a flush waits one more turn of the event
 * loop and runs while llama.cpp decodes the next token on its own thread: IPC overlaps compute
 * instead of adding to every token's latency. At high token rates, deltas within
 * `coalesceMs` of the last send go out together, so a fast model costs the gateway one message
 * per window rather than one per token (on 2 cores the gateway competes with this process for
 * the core llama.cpp leaves free). The first delta is never delayed.
 */
class DeltaBuffer {
  readonly #id: string;
  readonly #coalesceMs: number;
  #text = '';
  #tokens = 0;
  /** What the held text is: answer or thought (switching kinds flushes first, so order is kept). */
  #kind: 'delta' | 'reasoning' = 'delta';
  #isScheduled = false;
  #lastSentAt = 0;

  constructor(id: string, coalesceMs: number) {
    this.#id = id;
    this.#coalesceMs = coalesceMs;
  }

  add(text: string, tokens: number): void {
    this.#push('delta', text, tokens);
  }

  addReasoning(text: string, tokens: number): void {
    this.#push('reasoning', text, tokens);
  }

  #push(kind: 'delta' | 'reasoning', text: string, tokens: number): void {
    if (kind !== this.#kind) {
      this.flush();
      this.#kind = kind;
    }
    this.#text += text;
    this.#tokens += tokens;
    if (this.#isScheduled) return;
    this.#isScheduled = true;
    const wait = this.#lastSentAt + this.#coalesceMs - performance.now();
    if (wait > 0) setTimeout(() => this.flush(), wait);
    else setImmediate(() => setImmediate(() => this.flush()));
  }

  flush(): void {
    this.#isScheduled = false;
    if (this.#text.length === 0 && this.#tokens === 0) return;
    send({ type: this.#kind, id: this.#id, text: this.#text, tokens: this.#tokens });
    this.#lastSentAt = performance.now();
    this.#text = '';
    this.#tokens = 0;
  }
}

/**
 * The request with its whole conversation: a tail sent against the slot's previous messages is
 * joined to them. Every chat request's messages become the slot's base, whatever happens next.
 */
function withBase(message: Extract<ParentMessage, { type: 'generate' }>): GenerateRequest {
  const { request, slot } = message;
  const base = message.baseMessages ?? 0;
  if (request.input.type !== 'chat') {
    slotMessages[slot] = undefined;
    return request;
  }
  const held = slotMessages[slot];
  if (base > 0 && (!held || held.length < base)) {
    slotMessages[slot] = undefined;
    throw new Error(`slot ${slot} holds ${held?.length ?? 0} messages, the request continues ${base}`);
  }
  const messages = base > 0 && held ? [...held.slice(0, base), ...request.input.messages] : request.input.messages;
  slotMessages[slot] = messages;
  return base > 0 ? { ...request, input: { type: 'chat', messages } } : request;
}

async function shutdown(): Promise<void> {
  for (const controller of running.values()) controller.abort();
  saved?.dispose();
  await engine?.dispose();
  process.exit(0);
}

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'init':
      void init(message);
      break;
    case 'generate':
      void generate(message);
      break;
    case 'cancel':
      running.get(message.id)?.abort();
      break;
    case 'ping':
      send({ type: 'pong', seq: message.seq });
      break;
    case 'shutdown':
      void shutdown();
      break;
  }
});
// The parent owns this process: if the channel closes, nobody can read our output.
process.on('disconnect', () => {
  saved?.dispose();
  process.exit(0);
});

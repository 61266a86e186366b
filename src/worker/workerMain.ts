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
import { Slot, type EngineSlot } from './Slot.js';
import { ServerSlot } from './ServerSlot.js';
import type { LlamaContext } from 'node-llama-cpp';
import { DecodeBarrier } from './DecodeBarrier.js';
import { DiskPrefixCache } from './DiskPrefixCache.js';
import { loadModelIdentity, toStateFormat } from './stateIdentity.js';

/** Other workers' new disk-cache entries become visible within this. */
const diskCacheRefreshMs = 5_000;
/** Background changes of the disk cache reach the gateway's metrics within this. */
const diskReportDelayMs = 250;
/**
 * At shutdown, idle slots and host memory are written to the disk cache for at most this long (the
 * parent kills a worker that has not exited 5 s after asking it to).
 */
const shutdownWriteBackMs = 3_000;

let engine: Engine | undefined;
let slots: EngineSlot[] = [];
let saved: SavedPrefixes | undefined;
let outbox: Outbox | undefined;
const running = new Map<string, AbortController>();
/** Per slot: the messages of its last chat request (the base the parent sends later tails against). */
const slotMessages: Array<readonly ChatMessage[] | undefined> = [];
/** Per slot: its last rendered chat prompt, which the next one may continue. */
const slotPrompts: Array<RenderedChat | undefined> = [];
/** Slots a generation runs on, and per slot the timer of its idle save. */
const busySlots = new Set<number>();
const idleSaves: Array<NodeJS.Timeout | undefined> = [];
let diskReportTimer: NodeJS.Timeout | undefined;

/** Every message but text goes out after the text held before it, so each stream's order is kept. */
function send(message: WorkerMessage): void {
  outbox?.flush();
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
    const server = message.settings.server;
    if (!context) {
      // The server keeps the KV cache, and evicted prompts in its own host-memory cache.
      if (!server) throw new Error('no context and no server');
      slots = Array.from({ length: message.settings.slots }, (_, i) => new ServerSlot(i, server, engine!.contextSize, (tokens) => model.detokenize(tokens, true)));
    } else {
      const disk = await openDiskCache(engine, context, message.workerIndex);
      const savedPrefixes = new SavedPrefixes(message.settings.savedPrefixBytes, disk);
      saved = savedPrefixes;
      const siblings: Slot[] = [];
      const options = { batchSize: context.batchSize, saved: savedPrefixes, minSavedTokens: message.settings.minSavedPrefixTokens, barrier: new DecodeBarrier(), siblings };
      const local = Array.from({ length: message.settings.slots }, (_, i) => new Slot(i, context.getSequence(), model, options));
      siblings.push(...local);
      slots = local;
    }
    outbox = new Outbox(message.settings.streamCoalesceMs);
    send({ type: 'ready', version: IPC_VERSION, facts: engine.facts(), diskCache: saved?.disk?.takeReport() });
  } catch (err) {
    send({ type: 'fatal', message: `model load failed: ${(err as Error).message}` });
    process.exit(1);
  }
}

/**
 * The disk tier of saved prefixes, when configured (and saving is on). Any failure to set it up
 * leaves the worker without one (a warning), never a failed start.
 */
async function openDiskCache(loaded: Engine, context: LlamaContext, workerIndex: number): Promise<DiskPrefixCache | undefined> {
  const settings = loaded.settings;
  if (settings.diskCacheDir === '' || settings.diskCacheBytes <= 0 || settings.savedPrefixBytes <= 0) return undefined;
  try {
    return await DiskPrefixCache.open({
      dir: settings.diskCacheDir,
      workerIndex,
      workers: settings.workers,
      maxBytes: settings.diskCacheBytes,
      maxEntries: Math.max(1, settings.diskCacheMaxEntries),
      model: await loadModelIdentity(settings.modelPath),
      format: toStateFormat(loaded.llama, context),
      maxTokens: context.contextSize,
      // Evicted states wait for the disk in host memory (and count against its budget meanwhile).
      maxPendingBytes: settings.savedPrefixBytes,
      onWarn: (text, details) => send({ type: 'log', level: 'warn', message: text, details }),
      onChange: scheduleDiskReport,
      // With one worker there are no other workers' entries to find.
      refreshMs: settings.workers > 1 ? diskCacheRefreshMs : 0,
    });
  } catch (err) {
    send({ type: 'log', level: 'warn', message: 'disk prompt cache unavailable; saved prefixes stay in host memory', details: { dir: settings.diskCacheDir, detail: (err as Error)?.message ?? String(err) } });
    return undefined;
  }
}

/** What the disk cache did since the last report, ahead of the message that follows it. */
function sendDiskReport(): void {
  clearTimeout(diskReportTimer);
  diskReportTimer = undefined;
  const report = saved?.disk?.takeReport();
  if (report) send({ type: 'disk_cache', report });
}

function scheduleDiskReport(): void {
  if (diskReportTimer) return;
  diskReportTimer = setTimeout(sendDiskReport, diskReportDelayMs);
  diskReportTimer.unref();
}

async function generate(message: Extract<ParentMessage, { type: 'generate' }>): Promise<void> {
  const { id } = message;
  let request: GenerateRequest;
  const controller = new AbortController();
  running.set(id, controller);
  busySlots.add(message.slot);
  clearTimeout(idleSaves[message.slot]);
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
    const deltas = outbox!;
    const result = await slot.generate(request, prompt, plan, engine.settings.defaultMaxTokens, controller.signal, {
      onStarted: (promptTokens, cachedTokens, restoredTokens, copiedTokens) => send({ type: 'started', id, promptTokens, cachedTokens, restoredTokens, copiedTokens, render, evictionSave: slot.evictionSave }),
      onDelta: (text, tokens) => deltas.add(id, 0, text, tokens),
      onReasoning: (text, tokens) => deltas.add(id, 1, text, tokens),
      onReasoningEnd: (raw) => send({ type: 'reasoning', id, text: '', tokens: 0, raw }),
      onProgress: (evaluatedTokens, totalTokens) => send({ type: 'progress', id, evaluatedTokens, totalTokens }),
      onToolCall: (call) => send({ type: 'tool_call', id, call }),
    });
    sendDiskReport();
    send({ type: 'done', id, ...result, savedPrefixBytes: saved?.bytes ?? 0, truncated: prompt.truncated });
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
    outbox?.end(id);
    busySlots.delete(message.slot);
    scheduleIdleSave(message.slot);
  }
}

/**
 * Sends deltas off the decode path, every stream's together. node-llama-cpp dispatches the next
 * decode from a setImmediate callback queued after this token's, so a flush waits one more turn
 * of the event loop and runs while llama.cpp decodes the next token on its own thread: IPC
 * overlaps compute instead of adding to every token's latency. One flush is one message that
 * carries the text of every stream that has some (JSON framing, chosen by measurement:
 * `bench/ipcFraming.ts`); at high token rates, deltas within `coalesceMs` of the last flush go
 * out together, so a fast model costs the gateway one message per window rather than one per
 * token and stream. A stream's first delta is sent at once (with whatever else is held).
 */
class Outbox {
  readonly #coalesceMs: number;
  /** Held text, in order; a stream's consecutive text of one kind is one item. */
  #items: Array<[id: string, kind: 0 | 1, text: string, tokens: number]> = [];
  /** Index in `#items` of each stream's last item. */
  #last = new Map<string, number>();
  /** Streams that have had text sent (their later text may wait for the window). */
  readonly #started = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #isImmediate = false;
  #lastFlushAt = 0;

  constructor(coalesceMs: number) {
    this.#coalesceMs = coalesceMs;
  }

  /** Text of stream `id`: kind 0 answer, 1 thought. */
  add(id: string, kind: 0 | 1, text: string, tokens: number): void {
    const at = this.#last.get(id);
    const item = at === undefined ? undefined : this.#items[at];
    if (item && item[1] === kind) {
      item[2] += text;
      item[3] += tokens;
    } else {
      this.#last.set(id, this.#items.length);
      this.#items.push([id, kind, text, tokens]);
    }
    if (!this.#started.has(id)) {
      // A stream's first text goes out now: time to first token is what the client waits for.
      this.flush();
      return;
    }
    const wait = this.#lastFlushAt + this.#coalesceMs - performance.now();
    if (wait <= 0 && !this.#isImmediate) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#isImmediate = true;
      setImmediate(() => setImmediate(() => this.flush()));
    } else if (wait > 0 && !this.#isImmediate && !this.#timer) this.#timer = setTimeout(() => this.flush(), wait);
  }

  /** The stream ended: forget it. */
  end(id: string): void {
    this.#started.delete(id);
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#isImmediate = false;
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    this.#last = new Map();
    for (const item of items) this.#started.add(item[0]);
    this.#lastFlushAt = performance.now();
    process.send?.({ type: 'deltas', items } satisfies WorkerMessage);
  }
}

/**
 * Once a slot has been idle for `saveIdleSlotsAfterMs`, what it holds is saved, so the request
 * that later evicts it starts at once (the copy was made while nothing waited for it). A save
 * holds the whole context (node-llama-cpp locks it), so it waits until no slot of this worker
 * is generating.
 */
function scheduleIdleSave(index: number): void {
  const after = engine?.settings.saveIdleSlotsAfterMs ?? 0;
  const slot = slots[index];
  if (after <= 0 || !slot) return;
  clearTimeout(idleSaves[index]);
  idleSaves[index] = setTimeout(() => {
    if (busySlots.has(index)) return;
    if (busySlots.size > 0) scheduleIdleSave(index);
    else {
      void slot.saveWhileIdle().then(() => {
        sendDiskReport();
        send({ type: 'saved', savedPrefixBytes: saved?.bytes ?? 0 });
      });
    }
  }, after);
  idleSaves[index].unref();
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
  for (const timer of idleSaves) clearTimeout(timer);
  if (saved?.disk) await writeBack(saved);
  saved?.dispose();
  await engine?.dispose();
  process.exit(0);
}

/**
 * Graceful shutdown with a disk cache: what idle slots hold is saved, and every state in host
 * memory is written to disk, so the next start continues these conversations from the cache.
 * Bounded by `shutdownWriteBackMs`; whatever is not written by then is lost, never half-written.
 */
async function writeBack(prefixes: SavedPrefixes): Promise<void> {
  const deadline = performance.now() + shutdownWriteBackMs;
  for (const [index, slot] of slots.entries()) {
    if (busySlots.has(index) || performance.now() >= deadline) continue;
    await slot.saveWhileIdle();
  }
  await prefixes.close(Math.max(0, deadline - performance.now()));
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
// A terminal's Ctrl-C reaches the whole process group: the parent shuts its workers down in order (and asks for the write-back).
process.on('SIGINT', () => undefined);
// The parent owns this process: if the channel closes, nobody can read our output.
process.on('disconnect', () => {
  saved?.dispose();
  process.exit(0);
});

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway, Generation } from '../core/Gateway.js';
import type { RequestObserver, RequestSummary } from '../core/RequestObserver.js';
import type { GenerateRequest, GenerationEvent, ModelInfo, RequestId, ToolCall } from '../core/types.js';
import { resolveModelName } from '../protocol/models.js';
import { createId } from '../utils/ids.js';
import { TimedEvents, timedOut } from '../core/TimedEvents.js';
import type { HostedToolPolicy } from '../protocol/tools.js';
import { GenerationTracker } from './GenerationTracker.js';
import { createRequestSignal } from './sendStream.js';
import { FlintError } from '../errors/FlintError.js';
import { toWireError } from '../errors/toWireError.js';
import { sseData, sseDone } from '../protocol/sse.js';
import type { SseWriter } from './sendStream.js';

type Events = TimedEvents;

/** What the Chat and Completions routes need from their options. */
export interface GenerationRouteOptions {
  readonly gateway: Gateway;
  readonly observer: RequestObserver;
  readonly acceptAnyModelName: boolean;
  readonly requestTimeoutMs: number;
  /** Hosted tools in a request: left out, or refused. */
  readonly hostedTools: HostedToolPolicy;
  /** How long a stream waits for admission before its status goes out; then its progress-event interval. */
  readonly progressEventMs: number;
}

/** Progress of a request that has produced no output yet (queue place, prompt tokens evaluated). */
export interface Progress {
  evaluatedTokens: number;
  totalTokens: number;
  queuePosition: number;
}

/** A parsed request of an API with one internal request and one echoed model name. */
interface ParsedGeneration {
  readonly request: GenerateRequest;
  readonly model: string;
  readonly isStream: boolean;
}

/** The served model, or 503 while it is loading. */
export function servedModel(gateway: Gateway): ModelInfo {
  const model = gateway.model;
  if (!model) throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: 'model loading', retryAfterS: 2 } });
  return model;
}

/**
 * The shared start of a Chat or Completions request: parse the body (resolving the model),
 * start the generation with the request's signal, and wait for admission. Failures up to here
 * are HTTP errors, reported once through the tracker.
 */
export async function beginGeneration<P extends ParsedGeneration>(
  request: FastifyRequest,
  reply: FastifyReply,
  options: GenerationRouteOptions,
  api: RequestSummary['api'],
  idPrefix: string,
  parse: (body: unknown, id: RequestId, resolveModel: (requested: unknown) => string, hostedTools: HostedToolPolicy) => P,
): Promise<{ id: string; createdS: number; parsed: P; tracker: GenerationTracker; generation: Generation; events: Events; progress: Progress }> {
  const tracker = new GenerationTracker(api, options.observer, request);
  const id = createId(idPrefix);
  let parsed: P;
  try {
    const model = servedModel(options.gateway);
    parsed = parse(request.body, id as RequestId, (name) => resolveModelName(name, model, options.acceptAnyModelName), options.hostedTools);
  } catch (err) {
    throw tracker.fail(err);
  }
  tracker.setModel(parsed.model);
  const generation = options.gateway.start(parsed.request, { signal: createRequestSignal(reply, options.requestTimeoutMs) });
  const events = new TimedEvents(generation.events);
  try {
    const progress = await awaitStart(events, tracker, parsed.isStream ? options.progressEventMs : undefined);
    return { id, createdS: Math.floor(Date.now() / 1000), parsed, tracker, generation, events, progress };
  } catch (err) {
    await generation.dispose();
    throw err;
  }
}
type Done = Extract<GenerationEvent, { type: 'done' }>;

/**
 * Waits for the `start` event, i.e. admission and tokenization. Anything that fails before it
 * (context overflow, queue full, no worker) is still an ordinary HTTP error, since no byte is
 * sent yet. A stream still queued after `patienceMs` goes ahead (its progress is returned) and
 * is kept alive with progress chunks; later failures become in-stream errors.
 */
async function awaitStart(events: Events, tracker: GenerationTracker, patienceMs: number | undefined): Promise<Progress> {
  const progress: Progress = { evaluatedTokens: 0, totalTokens: 0, queuePosition: 0 };
  const startBy = performance.now() + (patienceMs ?? 0);
  try {
    for (;;) {
      const next = await events.next(patienceMs === undefined ? undefined : startBy - performance.now());
      if (next === timedOut) return progress;
      if (next.done) throw new FlintError('FLINT_ERR_INTERNAL');
      if (next.value.type === 'start') return progress;
      if (next.value.type !== 'progress') throw new FlintError('FLINT_ERR_INTERNAL');
      updateProgress(progress, next.value);
    }
  } catch (err) {
    throw tracker.fail(err);
  }
}

function updateProgress(progress: Progress, event: Extract<GenerationEvent, { type: 'progress' }>): void {
  if (event.queuePosition > 0) progress.queuePosition = event.queuePosition;
  else Object.assign(progress, { evaluatedTokens: event.evaluatedTokens, totalTokens: event.totalTokens, queuePosition: 0 });
}

/** A whole generation for a non-streaming reply (bounded by the request's token cap). */
export async function collectGeneration(events: Events, tracker: GenerationTracker): Promise<{ text: string; toolCalls: ToolCall[]; done: Done }> {
  let text = '';
  const toolCalls: ToolCall[] = [];
  let done: Done | undefined;
  try {
    for (;;) {
      const next = await events.next();
      if (next === timedOut || next.done) break;
      const event = next.value;
      if (event.type === 'delta') text += event.text;
      else if (event.type === 'tool_call') toolCalls.push(event.call);
      else if (event.type === 'done') done = event;
      if (event.type === 'delta' || event.type === 'tool_call') tracker.onText();
    }
  } catch (err) {
    throw tracker.fail(err);
  }
  if (!done) throw tracker.fail(new FlintError('FLINT_ERR_INTERNAL'));
  tracker.onDone(done);
  tracker.finish(200);
  return { text, toolCalls, done };
}

/** How one API renders generation events as `data:` frames (JSON, already serialized). */
export interface ChunkRenderer {
  delta(text: string): string;
  /** A keep-alive data chunk while queued or in prefill (clients' idle timers ignore comments). */
  progress(progress: Progress): string;
  toolCall?(index: number, call: ToolCall): string;
  /** The closing frames (finish chunk, optional usage chunk); `[DONE]` follows. */
  done(event: Done): string[];
}

/**
 * Streams a generation as `data:` SSE frames ending in `[DONE]` (Chat and Completions). A failure
 * after the first byte becomes an in-stream error frame without `[DONE]`, as the SDKs expect.
 */
export async function streamGeneration(events: Events, tracker: GenerationTracker, sse: SseWriter, render: ChunkRenderer, progress: Progress, progressEventMs: number): Promise<void> {
  let toolIndex = 0;
  let hasOutput = false;
  try {
    for (;;) {
      // Keep-alive waits only until output flows: no timer on the per-token path.
      const next = await events.next(hasOutput ? undefined : progressEventMs);
      if (next === timedOut) {
        await sse.write(sseData(render.progress(progress)));
        continue;
      }
      if (next.done) break;
      const event = next.value;
      if (event.type === 'progress') updateProgress(progress, event);
      else if (event.type !== 'start') hasOutput = true;
      if (event.type === 'delta') {
        tracker.onText();
        await sse.write(sseData(render.delta(event.text)));
      } else if (event.type === 'tool_call' && render.toolCall) {
        tracker.onText();
        await sse.write(sseData(render.toolCall(toolIndex++, event.call)));
      } else if (event.type === 'done') {
        tracker.onDone(event);
        for (const frame of render.done(event)) await sse.write(sseData(frame));
        await sse.write(sseDone);
      }
    }
    tracker.finish(200);
  } catch (err) {
    tracker.fail(err);
    await sse.write(sseData(JSON.stringify(toWireError(err).body)));
  } finally {
    sse.end();
  }
}

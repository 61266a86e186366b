import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway } from '../core/Gateway.js';
import type { RequestObserver, RequestSummary } from '../core/RequestObserver.js';
import type { GenerateRequest, GenerationEvent, ModelInfo, RequestId, ToolCall } from '../core/types.js';
import { resolveModelName } from '../protocol/models.js';
import { createId } from '../utils/ids.js';
import { GenerationTracker } from './GenerationTracker.js';
import { createRequestSignal } from './sendStream.js';
import { FlintError } from '../errors/FlintError.js';
import { toWireError } from '../errors/toWireError.js';
import { sseData, sseDone } from '../protocol/sse.js';
import type { SseWriter } from './sendStream.js';

type Events = AsyncIterator<GenerationEvent>;

/** What the Chat and Completions routes need from their options. */
export interface GenerationRouteOptions {
  readonly gateway: Gateway;
  readonly observer: RequestObserver;
  readonly acceptAnyModelName: boolean;
  readonly requestTimeoutMs: number;
}

/** A parsed request of an API with one internal request and one echoed model name. */
interface ParsedGeneration {
  readonly request: GenerateRequest;
  readonly model: string;
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
  parse: (body: unknown, id: RequestId, resolveModel: (requested: unknown) => string) => P,
): Promise<{ id: string; createdS: number; parsed: P; tracker: GenerationTracker; events: Events }> {
  const tracker = new GenerationTracker(api, options.observer, request);
  const id = createId(idPrefix);
  let parsed: P;
  try {
    const model = servedModel(options.gateway);
    parsed = parse(request.body, id as RequestId, (name) => resolveModelName(name, model, options.acceptAnyModelName));
  } catch (err) {
    throw tracker.fail(err);
  }
  tracker.setModel(parsed.model);
  const events = options.gateway.generate(parsed.request, { signal: createRequestSignal(reply, options.requestTimeoutMs) })[Symbol.asyncIterator]();
  await awaitStart(events, tracker);
  return { id, createdS: Math.floor(Date.now() / 1000), parsed, tracker, events };
}
type Done = Extract<GenerationEvent, { type: 'done' }>;

/**
 * Waits for the `start` event, i.e. admission and tokenization. Anything that fails before it
 * (context overflow, queue full, no worker) is still an ordinary HTTP error, since no byte is sent yet.
 */
async function awaitStart(events: Events, tracker: GenerationTracker): Promise<void> {
  try {
    const first = await events.next();
    if (first.done || first.value.type !== 'start') throw new FlintError('FLINT_ERR_INTERNAL');
  } catch (err) {
    throw tracker.fail(err);
  }
}

/** A whole generation for a non-streaming reply (bounded by the request's token cap). */
export async function collectGeneration(events: Events, tracker: GenerationTracker): Promise<{ text: string; toolCalls: ToolCall[]; done: Done }> {
  let text = '';
  const toolCalls: ToolCall[] = [];
  let done: Done | undefined;
  try {
    for (let next = await events.next(); !next.done; next = await events.next()) {
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
  toolCall?(index: number, call: ToolCall): string;
  /** The closing frames (finish chunk, optional usage chunk); `[DONE]` follows. */
  done(event: Done): string[];
}

/**
 * Streams a generation as `data:` SSE frames ending in `[DONE]` (Chat and Completions). A failure
 * after the first byte becomes an in-stream error frame without `[DONE]`, as the SDKs expect.
 */
export async function streamGeneration(events: Events, tracker: GenerationTracker, sse: SseWriter, render: ChunkRenderer): Promise<void> {
  let toolIndex = 0;
  try {
    for (let next = await events.next(); !next.done; next = await events.next()) {
      const event = next.value;
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

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway } from '../core/Gateway.js';
import { GenerationRun, RunAborted, toCacheScope, type Progress } from '../core/GenerationRun.js';
import type { RequestObserver, RequestSummary } from '../core/RequestObserver.js';
import type { RunRegistry } from '../core/RunRegistry.js';
import type { TenantLimits } from '../core/TenantLimits.js';
import { limitKey } from './auth.js';
import type { GenerateRequest, GenerationEvent, ModelInfo, RequestId, ToolCall } from '../core/types.js';
import { FlintError } from '../errors/FlintError.js';
import { resolveModelName } from '../protocol/models.js';
import { sseData, sseDone } from '../protocol/sse.js';
import type { HostedToolPolicy } from '../protocol/tools.js';
import { createId } from '../utils/ids.js';
import type { SseWriter } from './sendStream.js';

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
  /** Config `cache.scope`. */
  readonly cacheScope: 'key' | 'shared';
  /** Runs in flight, for graceful shutdown. */
  readonly runs: RunRegistry;
  /** Per-tenant limits (concurrent generations). */
  readonly tenantLimits: TenantLimits;
  /** Headers that name the client's session (config `websocket.sessionHeaders`): the affinity key of a request without `prompt_cache_key`. */
  readonly sessionHeaders: readonly string[];
}

/** Longest session name taken from a header as an affinity key. */
const maxSessionNameChars = 256;

/**
 * The affinity key a request's headers carry: the first of `headers` present (`x-flint-session`,
 * Codex's `session_id` / `session-id`), as `session:<name>`. Lets HTTP turns of one session keep
 * their slot, and land on the same member behind a front. Undefined when none is usable.
 */
export function sessionCacheKey(request: FastifyRequest, headers: readonly string[]): string | undefined {
  for (const header of headers) {
    const value = request.headers[header.toLowerCase()];
    const text = Array.isArray(value) ? value[0] : value;
    if (typeof text === 'string' && text.length > 0) return text.length <= maxSessionNameChars ? `session:${text}` : undefined;
  }
  return undefined;
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
 * One signal for one HTTP request: aborted (`client_gone`) when the client goes away before the
 * response has finished. The deadline belongs to the run.
 */
export function createRequestSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new RunAborted('client_gone'));
  });
  return controller.signal;
}

/** A run for one HTTP request: its signal, deadline and summary line. `patienceMs` only for streams. */
export function beginHttpRun(request: FastifyRequest, reply: FastifyReply, api: RequestSummary['api'], options: { observer: RequestObserver; requestTimeoutMs: number; cacheScope: 'key' | 'shared'; runs: RunRegistry; tenantLimits: TenantLimits }, patienceMs?: number): GenerationRun {
  return GenerationRun.begin({
    api,
    route: request.routeOptions.url ?? request.url,
    observer: options.observer,
    log: request.log,
    signal: createRequestSignal(reply),
    deadlineMs: options.requestTimeoutMs,
    patienceMs,
    cacheScope: toCacheScope(options.cacheScope, request.tenant),
    registry: options.runs,
    limits: { tenantLimits: options.tenantLimits, tenant: limitKey(request) },
  });
}

/**
 * The shared start of a Chat or Completions request: parse the body (resolving the model),
 * start the generation and wait for admission. Failures up to here are HTTP errors, reported
 * once by the run. The caller disposes the run (`await using`).
 */
export async function beginGeneration<P extends ParsedGeneration>(
  request: FastifyRequest,
  reply: FastifyReply,
  options: GenerationRouteOptions,
  api: RequestSummary['api'],
  idPrefix: string,
  parse: (body: unknown, id: RequestId, resolveModel: (requested: unknown) => string, hostedTools: HostedToolPolicy) => P,
): Promise<{ id: string; createdS: number; parsed: P; run: GenerationRun }> {
  const id = createId(idPrefix);
  const isStream = (request.body as { stream?: unknown } | null)?.stream === true;
  const run = beginHttpRun(request, reply, api, options, isStream ? options.progressEventMs : undefined);
  try {
    const model = servedModel(options.gateway);
    const parsed = parse(request.body, id as RequestId, (name) => resolveModelName(name, model, options.acceptAnyModelName), options.hostedTools);
    run.setModel(parsed.model);
    const sessionKey = parsed.request.cacheKey === undefined ? sessionCacheKey(request, options.sessionHeaders) : undefined;
    await run.start(options.gateway, sessionKey === undefined ? parsed.request : { ...parsed.request, cacheKey: sessionKey });
    return { id, createdS: Math.floor(Date.now() / 1000), parsed, run };
  } catch (err) {
    await run.dispose();
    throw run.fail(err);
  }
}

type Done = Extract<GenerationEvent, { type: 'done' }>;

/** A whole generation for a non-streaming reply (bounded by the request's token cap). */
export async function collectGeneration(run: GenerationRun): Promise<{ text: string; reasoning: string; toolCalls: ToolCall[]; done: Done }> {
  let text = '';
  let reasoning = '';
  const toolCalls: ToolCall[] = [];
  let done: Done | undefined;
  try {
    for await (const event of run.events()) {
      if (event.type === 'delta') text += event.text;
      else if (event.type === 'reasoning') reasoning += event.text;
      else if (event.type === 'tool_call') toolCalls.push(event.call);
      else if (event.type === 'done') done = event;
    }
    if (!done) throw new FlintError('FLINT_ERR_INTERNAL');
  } catch (err) {
    throw run.fail(err);
  }
  run.finish(200);
  return { text, reasoning, toolCalls, done };
}

/** How one API renders generation events as `data:` frames (JSON, already serialized). */
export interface ChunkRenderer {
  /** `tokens`: how many tokens the text is. */
  delta(text: string, tokens: number): string;
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
export async function streamGeneration(run: GenerationRun, sse: SseWriter, render: ChunkRenderer): Promise<void> {
  let toolIndex = 0;
  try {
    for await (const event of run.events()) {
      if (event.type === 'tick') await sse.write(sseData(render.progress(event.progress)));
      else if (event.type === 'delta') await sse.write(sseData(render.delta(event.text, event.tokens)));
      else if (event.type === 'tool_call' && render.toolCall) await sse.write(sseData(render.toolCall(toolIndex++, event.call)));
      else if (event.type === 'done') {
        for (const frame of render.done(event)) await sse.write(sseData(frame));
        await sse.write(sseDone);
      }
    }
    run.finish(200);
  } catch (err) {
    await sse.write(sseData(JSON.stringify(run.failInStream(err).body)));
  } finally {
    sse.end();
  }
}

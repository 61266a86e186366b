import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { RequestObserver } from '../core/RequestObserver.js';
import { GenerationRun, RunAborted, toCacheScope } from '../core/GenerationRun.js';
import type { Logger } from '../core/Logger.js';
import type { RunRegistry } from '../core/RunRegistry.js';
import type { TenantLimits } from '../core/TenantLimits.js';
import { FlintError } from '../errors/FlintError.js';
import { toWireError } from '../errors/toWireError.js';
import type { ParsedResponseRequest } from '../protocol/responses/parseResponseRequest.js';
import type { Conversation, ResponseService } from '../responses/ResponseService.js';
import { LruMap } from '../utils/LruMap.js';
import { checkJsonShape, type JsonShapeLimits } from '../utils/checkJsonShape.js';

/** Limits of one socket (config `websocket`). */
export interface ConnectionLimits {
  readonly idleTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly maxLifetimeMs: number;
  readonly maxSendBufferBytes: number;
  readonly maxQueuedResponses: number;
  readonly connectionCacheSize: number;
  /** Responses that run at once, one per `stream_id` lane. */
  readonly maxConcurrentLanes: number;
  /** Deadline of one response, from the frame's arrival (config `server.requestTimeoutMs`). */
  readonly requestTimeoutMs: number;
  /** Keep-alive interval while a response is queued or in prefill (config `server.progressEventMs`). */
  readonly progressEventMs: number;
  /** Config `cache.scope`. */
  readonly cacheScope: 'key' | 'shared';
  /** Client frames per second per socket (0 = off), and how many may come at once. */
  readonly maxMessagesPerSecond: number;
  readonly maxMessagesBurst: number;
  /** Shape limits of a frame's JSON (config `server.maxJsonDepth`, `maxJsonArrayItems`). */
  readonly json: JsonShapeLimits;
}

/** Session-level observations (metrics/). */
export interface SessionObserver {
  onSessionOpen(): void;
  onSessionClose(turns: number): void;
  onTurnFirstToken(seconds: number): void;
}

interface Pending {
  readonly parsed: ParsedResponseRequest;
  /** Started when the frame arrived: deadline and summary count the wait behind earlier responses. */
  readonly run: GenerationRun;
  readonly streamId: string | undefined;
  responseId?: string;
}

/** The responses of one `stream_id` (or of none): run one at a time, in arrival order. */
interface Lane {
  readonly streamId: string | undefined;
  readonly queue: Pending[];
  running: Pending | undefined;
}

/** Longest accepted `stream_id`. */
const maxStreamIdChars = 256;

/** WebSocket close codes used here (RFC 6455). */
const closeCodes = { normal: 1000, goingAway: 1001, policyViolation: 1008 } as const;

/**
 * One Responses WebSocket: client events in, one JSON server event per message out. Responses
 * of one `stream_id` lane run one at a time in arrival order; lanes run at once, each on its own
 * slot, up to `maxConcurrentLanes` (the others wait their turn). A `response.create` sent while
 * its lane is busy is queued, up to `maxQueuedResponses` on the socket. The socket keeps its
 * recent responses so `previous_response_id` continues them with only the new items evaluated
 * (from any lane: continuing another lane's response forks it), and each lane prefers the slot
 * that served its last turn. Closing the socket aborts everything it started; a named session
 * keeps its responses and slot pin for the next socket (ResumableSessions).
 */
export class ResponsesConnection {
  readonly #socket: WebSocket;
  readonly #service: ResponseService;
  readonly #limits: ConnectionLimits;
  readonly #log: FastifyBaseLogger;
  readonly #requests: RequestObserver;
  readonly #sessions: SessionObserver;
  readonly #sessionKey: string;
  /** The tenant of the handshake: what this socket may read and continue. */
  readonly #tenant: string;
  readonly #runs: RunRegistry;
  readonly #tenantLimits: TenantLimits;
  readonly #limitKey: string;
  /** Token bucket of client frames (config `websocket.maxMessagesPerSecond`). */
  readonly #frames: { tokens: number; refilledAt: number };
  readonly #cache: LruMap<string, Conversation>;
  /** Lanes with responses queued or running, by `stream_id` ('' for none). */
  readonly #lanes = new Map<string, Lane>();
  /** Lanes with queued responses waiting for one of the `maxConcurrentLanes` turns. */
  readonly #waiting: Lane[] = [];
  #runningLanes = 0;
  #turns = 0;
  #isClosed = false;
  #isExpired = false;
  #isDraining = false;
  readonly #socketClosed: Promise<void>;
  #isAlive = true;
  readonly #timers: NodeJS.Timeout[] = [];
  /** Aborted when the socket closes: every run of the connection stops. */
  readonly #closed = new AbortController();
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(socket: WebSocket, deps: { service: ResponseService; limits: ConnectionLimits; log: FastifyBaseLogger; requests: RequestObserver; sessions: SessionObserver; sessionKey: string; tenant: string; runs: RunRegistry; tenantLimits: TenantLimits; limitKey: string; cache?: LruMap<string, Conversation> }) {
    this.#socket = socket;
    this.#service = deps.service;
    this.#limits = deps.limits;
    this.#log = deps.log;
    this.#requests = deps.requests;
    this.#sessions = deps.sessions;
    this.#sessionKey = deps.sessionKey;
    this.#tenant = deps.tenant;
    this.#runs = deps.runs;
    this.#tenantLimits = deps.tenantLimits;
    this.#limitKey = deps.limitKey;
    this.#frames = { tokens: deps.limits.maxMessagesBurst, refilledAt: performance.now() };
    this.#cache = deps.cache ?? new LruMap(deps.limits.connectionCacheSize);
    this.#sessions.onSessionOpen();
    socket.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    socket.on('pong', () => (this.#isAlive = true));
    this.#socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => this.#onClose());
    socket.on('error', (err) => this.#log.debug({ err }, 'websocket error'));
    const ping = setInterval(() => this.#ping(), deps.limits.pingIntervalMs);
    const lifetime = setTimeout(() => this.#expire(), deps.limits.maxLifetimeMs);
    this.#timers.push(ping, lifetime);
    for (const t of this.#timers) t.unref();
    this.#touch();
  }

  /** One client frame from the bucket; false when the client sends faster than allowed. */
  #takeFrame(): boolean {
    const rate = this.#limits.maxMessagesPerSecond;
    if (rate <= 0) return true;
    const now = performance.now();
    this.#frames.tokens = Math.min(this.#limits.maxMessagesBurst, this.#frames.tokens + ((now - this.#frames.refilledAt) / 1000) * rate);
    this.#frames.refilledAt = now;
    if (this.#frames.tokens < 1) return false;
    this.#frames.tokens -= 1;
    return true;
  }

  /**
   * Server shutdown: new and queued responses are refused (`error`, 503 with Retry-After), the
   * running one may finish (shutdown stops it with its terminal event once the grace period is
   * over), then the socket closes with 1001. Resolves once it is closed.
   */
  drain(): Promise<void> {
    if (!this.#isDraining) {
      this.#isDraining = true;
      for (const lane of this.#lanes.values()) {
        for (const pending of lane.queue.splice(0)) {
          void pending.run.dispose();
          this.#sendError(shuttingDown(), pending.streamId);
        }
      }
      if (this.#runningLanes === 0) this.#goAway();
    }
    return this.#socketClosed;
  }

  /**
   * The end of a drain: `websocket_connection_limit_reached` (what a client such as Codex answers
   * by opening a new connection, which a balancer sends to another replica), then close 1001.
   */
  #goAway(): void {
    this.#sendError(new FlintError('FLINT_ERR_WS_DRAINING'), undefined);
    this.#socket.close(closeCodes.goingAway, 'server shutting down');
    // A client that never answers the close handshake is cut off.
    setTimeout(() => this.#socket.terminate(), 2_000).unref();
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.#touch();
    if (!this.#takeFrame()) {
      return this.#sendError(new FlintError('FLINT_ERR_RATE_LIMITED', { details: { limit: `${this.#limits.maxMessagesPerSecond} frames per second`, retryAfterS: 1 } }), undefined);
    }
    if (isBinary) return this.#sendError(new FlintError('FLINT_ERR_WS_INVALID_FRAME'), undefined);
    let event: Record<string, unknown>;
    try {
      const text = data.toString('utf8');
      const violation = checkJsonShape(text, this.#limits.json);
      if (violation) return this.#sendError(new FlintError('FLINT_ERR_JSON_TOO_COMPLEX', { param: violation.param, details: { detail: violation.detail } }), undefined);
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected an object');
      event = parsed as Record<string, unknown>;
    } catch (err) {
      return this.#sendError(new FlintError('FLINT_ERR_WS_INVALID_JSON', { details: { detail: (err as Error).message } }), undefined);
    }
    if (event.stream_id !== undefined && (typeof event.stream_id !== 'string' || event.stream_id.length === 0 || event.stream_id.length > maxStreamIdChars)) {
      // Echoed in every event of its lane: bounded, so a frame cannot multiply the server's output.
      return this.#sendError(new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'stream_id', details: { detail: `Invalid 'stream_id': expected a string of 1 to ${maxStreamIdChars} characters.` } }), undefined);
    }
    const streamId = event.stream_id as string | undefined;
    switch (event.type) {
      case 'response.create':
        return this.#create(event, streamId);
      case 'response.cancel':
        return this.#cancel(typeof event.response_id === 'string' ? event.response_id : undefined, streamId);
      case 'response.processed':
        return;
      case 'response.steer':
      case 'response.inject':
        return this.#sendError(new FlintError('FLINT_ERR_WS_STEERING', { details: { eventType: event.type } }), streamId);
      default:
        return this.#sendError(new FlintError('FLINT_ERR_WS_UNKNOWN_EVENT', { details: { eventType: String(event.type) } }), streamId);
    }
  }

  #create(event: Record<string, unknown>, streamId: string | undefined): void {
    if (this.#isExpired) return this.#limitReached();
    if (this.#isDraining) return this.#sendError(shuttingDown(), streamId);
    if (this.#pendingCount() >= this.#limits.maxQueuedResponses) {
      return this.#sendError(new FlintError('FLINT_ERR_WS_TOO_MANY_INFLIGHT', { details: { limit: this.#limits.maxQueuedResponses, retryAfterS: 1 } }), streamId);
    }
    // Some clients nest the body: {"type":"response.create","response":{...}}.
    const nested = event.response;
    const body = event.model === undefined && event.input === undefined && typeof nested === 'object' && nested !== null ? nested : event;
    const { type: _type, stream_id: _streamId, stream: _stream, stream_options: _options, ...fields } = body as Record<string, unknown>;
    const run = GenerationRun.begin({
      api: 'responses_ws',
      route: '/v1/responses (websocket)',
      observer: this.#requests,
      log: this.#log as unknown as Logger,
      signal: this.#closed.signal,
      deadlineMs: this.#limits.requestTimeoutMs,
      patienceMs: this.#limits.progressEventMs,
      cacheScope: toCacheScope(this.#limits.cacheScope, this.#tenant),
      registry: this.#runs,
      limits: { tenantLimits: this.#tenantLimits, tenant: this.#limitKey },
    });
    let parsed: ParsedResponseRequest;
    try {
      parsed = this.#service.parse(fields);
      run.setModel(parsed.model);
    } catch (err) {
      void run.dispose();
      return this.#sendError(run.fail(err), streamId);
    }
    const laneKey = streamId ?? '';
    let lane = this.#lanes.get(laneKey);
    if (!lane) {
      lane = { streamId, queue: [], running: undefined };
      this.#lanes.set(laneKey, lane);
    }
    lane.queue.push({ parsed, run, streamId });
    if (!lane.running && !this.#waiting.includes(lane)) this.#waiting.push(lane);
    this.#dispatch();
  }

  /** Responses queued or running on the socket, over all lanes. */
  #pendingCount(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.queue.length + (lane.running ? 1 : 0);
    return n;
  }

  /**
   * `response.cancel`: the response named by `response_id`; else the running response of the
   * frame's `stream_id` lane (its first queued one when none runs); else that of every lane.
   */
  #cancel(responseId: string | undefined, streamId: string | undefined): void {
    const lanes = responseId === undefined && streamId !== undefined ? [this.#lanes.get(streamId)].filter((l) => l !== undefined) : [...this.#lanes.values()];
    for (const lane of lanes) {
      const running = lane.running;
      if (running && (responseId === undefined || running.responseId === responseId)) {
        running.run.stop('cancelled');
        if (responseId !== undefined) return;
        continue;
      }
      const at = lane.queue.findIndex((p) => responseId === undefined || p.responseId === responseId);
      if (at !== -1) {
        const [pending] = lane.queue.splice(at, 1);
        void pending.run.dispose();
        this.#sendError(new FlintError('FLINT_ERR_WS_RESPONSE_CANCELLED'), pending.streamId);
        if (responseId !== undefined) return;
      }
      this.#dropIfEmpty(lane);
    }
  }

  /** Starts waiting lanes while fewer than `maxConcurrentLanes` run. */
  #dispatch(): void {
    while (!this.#isClosed && this.#runningLanes < this.#limits.maxConcurrentLanes && this.#waiting.length > 0) {
      const lane = this.#waiting.shift()!;
      const next = lane.queue.shift();
      if (!next) {
        this.#dropIfEmpty(lane);
        continue;
      }
      lane.running = next;
      this.#runningLanes++;
      this.#runOne(next).then(
        () => this.#afterRun(lane),
        (err: unknown) => {
          this.#log.error({ err }, 'websocket response failed unexpectedly');
          this.#afterRun(lane);
        },
      );
    }
    if (this.#runningLanes === 0 && this.#waiting.length === 0) {
      if (this.#isExpired) this.#limitReached();
      else this.#touch();
    }
  }

  #afterRun(lane: Lane): void {
    lane.running = undefined;
    this.#runningLanes--;
    if (this.#isDraining) {
      if (this.#runningLanes === 0) this.#goAway();
      return;
    }
    // Behind the lanes already waiting: one busy lane never starves the others.
    if (lane.queue.length > 0) this.#waiting.push(lane);
    else this.#dropIfEmpty(lane);
    this.#dispatch();
  }

  #dropIfEmpty(lane: Lane): void {
    if (lane.running || lane.queue.length > 0) return;
    this.#lanes.delete(lane.streamId ?? '');
    const at = this.#waiting.indexOf(lane);
    if (at !== -1) this.#waiting.splice(at, 1);
  }

  async #runOne(pending: Pending): Promise<void> {
    const { parsed, streamId, run } = pending;
    try {
      const events = this.#service.run(parsed, run, {
        tenant: this.#tenant,
        isStream: true,
        // Each lane keeps its own slot: a lane's key is the session's (or prompt_cache_key) plus its stream_id.
        cacheKey: laneCacheKey(parsed.body.prompt_cache_key ?? this.#sessionKey, streamId),
        findLocal: (id) => this.#cache.get(id),
        onCreated: (response) => (pending.responseId = response.id),
        onFinished: (response, conversation) => {
          if (response.status === 'failed') {
            if (parsed.previousResponseId) this.#cache.delete(parsed.previousResponseId);
          } else this.#cache.set(response.id, conversation);
        },
      });
      try {
        for await (const event of events) await this.#send(streamId ? withStreamId(event.json, streamId) : event.json);
      } catch (err) {
        // Failed before response.created: an error event; a continuation that fails forgets its parent.
        if (parsed.previousResponseId) this.#cache.delete(parsed.previousResponseId);
        this.#sendError(run.fail(err), streamId);
        return;
      }
      this.#turns++;
      if (run.timeToFirstOutputS !== undefined) this.#sessions.onTurnFirstToken(run.timeToFirstOutputS);
    } finally {
      await run.dispose();
    }
  }

  /** Sends one event; while the client reads slower than we write, waits (the scheduler's buffer limit bounds the rest). */
  async #send(json: string): Promise<void> {
    if (this.#isClosed) return;
    this.#socket.send(json);
    while (this.#socket.bufferedAmount > this.#limits.maxSendBufferBytes && !this.#isClosed) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  #sendError(err: unknown, streamId: string | undefined): void {
    const wire = toWireError(err);
    if (!wire.isExpected) this.#log.error({ err }, 'websocket request failed');
    else this.#log.debug({ code: wire.body.error.code, param: wire.body.error.param, status: wire.status }, 'websocket request refused');
    const event: Record<string, unknown> = { type: 'error', status: wire.status, error: wire.body.error };
    if (streamId) event.stream_id = streamId;
    if (this.#isClosed) return;
    // A client that floods bad frames without reading the errors would grow the send buffer: cut it off.
    if (this.#socket.bufferedAmount > this.#limits.maxSendBufferBytes) {
      this.#log.warn({ bufferedBytes: this.#socket.bufferedAmount }, 'websocket client does not read its error events; closing');
      this.#socket.close(closeCodes.policyViolation, 'too many unread error events');
      return;
    }
    this.#socket.send(JSON.stringify(event));
  }

  /** The age limit passed: never cut a running response; otherwise say so and close 1001. */
  #expire(): void {
    this.#isExpired = true;
    if (this.#lanes.size === 0) this.#limitReached();
  }

  #limitReached(): void {
    this.#sendError(new FlintError('FLINT_ERR_WS_CONNECTION_LIMIT', { details: { limitMinutes: Math.round(this.#limits.maxLifetimeMs / 60_000) } }), undefined);
    this.#socket.close(closeCodes.goingAway, 'connection age limit reached');
  }

  #ping(): void {
    if (!this.#isAlive) {
      this.#socket.close(closeCodes.goingAway, 'no pong');
      return;
    }
    this.#isAlive = false;
    this.#socket.ping();
  }

  /** Restarts the idle timer: a socket with nothing running and no frames for idleTimeoutMs is closed. */
  #touch(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#lanes.size === 0) this.#socket.close(closeCodes.normal, 'idle');
      else this.#touch();
    }, this.#limits.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #abortAll(): void {
    this.#closed.abort(new RunAborted('client_gone'));
    for (const lane of this.#lanes.values()) for (const pending of lane.queue.splice(0)) void pending.run.dispose();
    this.#waiting.length = 0;
  }

  #onClose(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#abortAll();
    for (const t of this.#timers) clearTimeout(t);
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#sessions.onSessionClose(this.#turns);
  }
}

function shuttingDown(): FlintError {
  return new FlintError('FLINT_ERR_SHUTTING_DOWN', { details: { retryAfterS: 5 } });
}

/** The slot-affinity key of a lane: the session's key, plus the lane's `stream_id` when it has one. */
export function laneCacheKey(base: string, streamId: string | undefined): string {
  return streamId === undefined ? base : `${base}/${streamId}`;
}

/** Adds `stream_id` to an already serialized event object. */
function withStreamId(json: string, streamId: string): string {
  return `${json.slice(0, -1)},"stream_id":${JSON.stringify(streamId)}}`;
}

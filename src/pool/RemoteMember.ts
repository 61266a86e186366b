import { FlintError } from '../errors/FlintError.js';
import type { Logger } from '../core/Logger.js';
import type { MemberLoad, MemberObserver, MemberOutcome } from '../core/members.js';
import { fetchMemberLoad, isSaturatedBy, readCapped } from './memberLoad.js';
import { frontTenantHeader, type FinishReason, type GenerateRequest, type ToolCall } from '../core/types.js';
import { AsyncQueue } from '../utils/AsyncQueue.js';
import { LinkedAbort } from '../utils/LinkedAbort.js';
import type { EngineMember, RunOptions, WorkerEvent, WorkerRun } from './EngineMember.js';
import { healthPaths, toUpstreamRequest, type UpstreamKind } from './upstreamRequest.js';

/** One entry of config `upstreams`. */
export interface UpstreamSettings {
  readonly name: string;
  /** Base URL (`http://10.0.0.2:8080`); paths are appended. */
  readonly url: string;
  readonly kind: UpstreamKind;
  /** Bearer key the member expects ('' for none). */
  readonly key: string;
  /** Model name sent to the member ('' = the first one its `/v1/models` lists, else the request's). */
  readonly model: string;
  /** Requests the front runs on it at once (its slots in the scheduler). */
  readonly slots: number;
}

/** Config `upstream`: how members are probed and how long they may take to answer. */
export interface UpstreamTimeouts {
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  /** From sending a request to the member's response headers. */
  readonly connectTimeoutMs: number;
  /** Longest silence of a member's stream (no byte, not even a keep-alive) before it counts as hung. */
  readonly streamIdleTimeoutMs: number;
}

/** How the front drives a member beyond its settings. */
/** Why a member's requests were stopped from the front's side: the member is gone or hung. */
class MemberLost extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}

/** Longest SSE line or error body read from a member: a hostile or broken one cannot grow memory. */
const maxLineChars = 4 * 1024 * 1024;
const maxErrorBodyChars = 64 * 1024;

/**
 * A remote engine in the pool: another Flint node, llama-server, vLLM, Ollama or any
 * OpenAI-compatible server, driven over its streaming Chat Completions / Completions API. It
 * is up while its readiness probe answers; a refused connection, a 5xx or a stream cut short
 * marks it down at once (passive ejection) until the next probe succeeds. Failures before any
 * output are FLINT_ERR_UPSTREAM_UNAVAILABLE, which the scheduler retries on another member.
 */
export class RemoteMember implements EngineMember {
  readonly index: number;
  readonly settings: UpstreamSettings;
  readonly #timeouts: UpstreamTimeouts;
  readonly #logger: Logger;
  readonly #stateHandlers: Array<(isUp: boolean, reason: string) => void> = [];
  /** Stops of the requests in flight on it: a member marked down takes them with it. */
  readonly #inFlight = new Set<(lost: MemberLost) => void>();
  #isUp = false;
  #memberModel: string | undefined;
  #load: MemberLoad | undefined;
  #timer: NodeJS.Timeout | undefined;
  #isDisposed = false;

  readonly #observer: MemberObserver | undefined;

  constructor(index: number, settings: UpstreamSettings, timeouts: UpstreamTimeouts, logger: Logger, observer?: MemberObserver) {
    this.index = index;
    this.#observer = observer;
    this.settings = settings;
    this.#timeouts = timeouts;
    this.#logger = logger.child({ member: settings.name });
  }

  get isAlive(): boolean {
    return this.#isUp;
  }

  get routingName(): string {
    return this.settings.name;
  }

  /** Flint nodes and vLLM continue a final assistant message (`continue_final_message`). */
  get canContinue(): boolean {
    return this.settings.kind === 'flint' || this.settings.kind === 'vllm';
  }

  /** All its slots busy with requests waiting, as its last probe read it (kinds that export their load). */
  get isSaturated(): boolean {
    return isSaturatedBy(this.#load, this.settings.kind);
  }

  /** The model name it is sent (configured, else the first its `/v1/models` listed, once probed). */
  get modelName(): string | undefined {
    return this.settings.model || this.#memberModel;
  }

  /** Registers a callback for the member going up (its slots can be leased) or down. */
  onStateChange(handler: (isUp: boolean, reason: string) => void): void {
    this.#stateHandlers.push(handler);
  }

  onSavedPrefixBytes(): void {
    // A remote member's saved prefixes are its own business.
  }

  /** Probes now and then every `probeIntervalMs` until disposed. */
  startProbing(): Promise<void> {
    const tick = async () => {
      await this.probe();
      if (!this.#isDisposed) this.#timer = setTimeout(() => void tick(), this.#timeouts.probeIntervalMs).unref();
    };
    return tick();
  }

  /**
   * One readiness probe: the kind's health path, then (with a key, or to learn the member's model
   * name) its `/v1/models`, which a member that refuses the front's key answers 401 or 403.
   */
  async probe(): Promise<void> {
    try {
      const res = await this.#fetch(healthPaths[this.settings.kind], { method: 'GET', signal: AbortSignal.timeout(this.#timeouts.probeTimeoutMs) });
      await res.body?.cancel();
      if (!res.ok) return this.#setState(false, `readiness probe answered ${res.status}`);
      if (this.settings.key !== '' || (this.settings.model === '' && this.#memberModel === undefined)) {
        const models = await this.#fetch('/v1/models', { method: 'GET', signal: AbortSignal.timeout(this.#timeouts.probeTimeoutMs) });
        const body = await readCapped(models, maxErrorBodyChars);
        if (models.status === 401 || models.status === 403) return this.#setState(false, `it refuses the front's key (${models.status} on /v1/models)`);
        if (models.ok && this.settings.model === '') this.#memberModel ??= firstModelId(body);
      }
      await this.#readLoad();
      this.#setState(true, 'readiness probe answered');
    } catch (err) {
      this.#setState(false, `readiness probe failed: ${describe(err)}`);
    }
  }

  run(id: string, slot: number, request: GenerateRequest, signal: AbortSignal, options: RunOptions): WorkerRun {
    const queue = new AsyncQueue<WorkerEvent>();
    const buffer = { chars: 0, isOverflowed: false };
    const abort = new LinkedAbort([signal]);
    const onText = () => {
      if (buffer.chars > options.maxBufferedBytes && !buffer.isOverflowed) {
        // The consumer is not reading: stop generating for it rather than buffer without bound.
        buffer.isOverflowed = true;
        options.onOverflow();
        abort.abort(new DOMException('consumer stopped reading', 'AbortError'));
      }
    };
    // Marked down meanwhile (a failed probe: it hangs or died): what runs on it is stopped, and
    // retried elsewhere if it has sent nothing yet.
    const onLost = (lost: MemberLost) => abort.abort(lost);
    this.#inFlight.add(onLost);
    const finished = this.#stream(id, request, abort, queue, buffer, onText).finally(() => {
      this.#inFlight.delete(onLost);
      abort.unlink();
    });
    const events = (async function* () {
      for await (const event of queue) {
        if (event.type === 'delta' || event.type === 'reasoning') buffer.chars -= event.text.length;
        yield event;
      }
    })();
    return { events, finished };
  }

  /** The member is gone (its process exited): out of the pool, and what runs on it is stopped. */
  markDown(reason: string): void {
    this.#setState(false, reason);
  }

  dispose(): void {
    this.#isDisposed = true;
    clearTimeout(this.#timer);
  }

  /** Streams one generation into `queue`; settles once the member's answer is over. Never rejects. */
  async #stream(id: string, request: GenerateRequest, abort: LinkedAbort, queue: AsyncQueue<WorkerEvent>, buffer: { chars: number }, onText: () => void): Promise<void> {
    const startedAt = performance.now();
    let firstAt: number | undefined;
    let isStarted = false;
    let finishReason: FinishReason | undefined;
    let truncated: boolean | undefined;
    let usage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
    let pieces = 0;
    /** Completion tokens the member's usage so far counted (continuous usage stats), for each delta's count. */
    let counted = 0;
    const calls = new Map<number, { id: string; name: string; arguments: string }>();
    const start = () => {
      if (isStarted) return;
      isStarted = true;
      firstAt = performance.now();
      queue.push({ type: 'started', id, promptTokens: 0, cachedTokens: 0, restoredTokens: 0, copiedTokens: 0, evictionSave: 'none', isCacheKnownAtEnd: true });
    };
    const member = this.settings.name;
    const report = (outcome: MemberOutcome) => this.#observer?.onRequest(member, outcome, firstAt === undefined ? undefined : (firstAt - startedAt) / 1000);
    try {
      const upstream = toUpstreamRequest(request, this.settings.model || this.#memberModel || request.model, this.settings.kind);
      const connectMs = this.#timeouts.connectTimeoutMs;
      const unanswered = setTimeout(() => abort.abort(this.#lost(`no answer within ${connectMs} ms`)), connectMs);
      let res: Response;
      try {
        res = await this.#fetch(upstream.path, {
          method: 'POST',
          // A Flint member keeps the front's tenants apart when this front's key is one of its server.frontKeys.
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(this.settings.kind === 'flint' ? { [frontTenantHeader]: request.cacheScope ?? 'shared' } : {}) },
          body: JSON.stringify(upstream.body),
          signal: abort.signal,
        });
      } catch (err) {
        if (abort.signal.aborted) throw err;
        // A pooled connection the member closed as the request went out (a keep-alive race) says
        // nothing of its health: retried, and it stays up; a refused or unreachable one is down.
        throw this.#down(describe(err), isConnectionReset(err));
      } finally {
        clearTimeout(unanswered);
      }
      if (!res.ok) {
        const body = await readCapped(res, maxErrorBodyChars);
        const overflow = contextOverflowOf(body);
        if (overflow) throw overflow;
        const detail = errorMessageOf(body) ?? `HTTP ${res.status}`;
        // Overloaded, draining or broken: another member may serve it. A refusal would be refused anywhere.
        if (res.status >= 500 || res.status === 429) throw this.#down(`HTTP ${res.status}: ${detail}`, res.status === 429 || res.status === 503);
        // The front's own configuration is wrong for this member (its key, a proxy's auth): not the client's fault.
        if (res.status === 401 || res.status === 403 || res.status === 407) throw this.#down(`it refuses the front's key (HTTP ${res.status}: ${detail})`);
        throw new FlintError('FLINT_ERR_UPSTREAM_REJECTED', { details: { member, detail } });
      }
      if (!res.body) throw this.#down('the answer has no body');
      const decoder = new TextDecoder();
      let line = '';
      // A member that stops sending (stopped, hung, a dead link that never resets) is lost.
      const idleMs = this.#timeouts.streamIdleTimeoutMs;
      const idle = setTimeout(() => abort.abort(this.#lost(`no data for ${idleMs} ms`)), idleMs);
      const onData = (data: string): void => {
        if (data === '[DONE]') return;
        const chunk = JSON.parse(data) as StreamChunk;
        if (chunk.error) {
          const detail = chunk.error.message ?? JSON.stringify(chunk.error).slice(0, 500);
          throw isStarted || pieces > 0 ? new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail } }) : this.#down(detail, true);
        }
        if (upstream.path === '/infill') {
          if (typeof chunk.content === 'string' && chunk.content.length > 0 && !request.isWarmupOnly) {
            start();
            buffer.chars += chunk.content.length;
            queue.push({ type: 'delta', id, text: chunk.content, tokens: 1 });
            pieces++;
            onText();
          }
          if (chunk.stop === true) {
            finishReason = chunk.stop_type === 'limit' ? 'length' : 'stop';
            truncated = chunk.truncated === true;
            usage = { promptTokens: chunk.tokens_evaluated ?? 0, cachedTokens: chunk.timings?.cache_n ?? 0, completionTokens: chunk.tokens_predicted ?? 0 };
          }
          return;
        }
        const choice = chunk.choices?.[0];
        const delta = choice?.delta;
        const reasoning = delta?.reasoning_content ?? delta?.reasoning;
        if (typeof reasoning === 'string' && reasoning.length > 0) {
          start();
          buffer.chars += reasoning.length;
          queue.push({ type: 'reasoning', id, text: reasoning, tokens: 1 });
          pieces++;
          onText();
        }
        const text = delta?.content ?? choice?.text;
        if (typeof text === 'string' && text.length > 0 && !request.isWarmupOnly) {
          start();
          buffer.chars += text.length;
          const so = chunk.usage?.completion_tokens;
          const tokens = typeof so === 'number' && so > counted ? so - counted : 1;
          if (typeof so === 'number') counted = Math.max(counted, so);
          queue.push({ type: 'delta', id, text, tokens });
          pieces++;
          onText();
        }
        for (const call of delta?.tool_calls ?? []) {
          const at = call.index ?? 0;
          const held = calls.get(at) ?? { id: '', name: '', arguments: '' };
          if (call.id) held.id = call.id;
          if (call.function?.name) held.name += call.function.name;
          if (call.function?.arguments) held.arguments += call.function.arguments;
          calls.set(at, held);
        }
        if (choice?.finish_reason) finishReason = toFinishReason(choice.finish_reason);
        const u = chunk.usage;
        if (u) {
          usage = {
            promptTokens: u.prompt_tokens ?? 0,
            cachedTokens: u.prompt_tokens_details?.cached_tokens ?? chunk.timings?.cache_n ?? 0,
            completionTokens: u.completion_tokens ?? 0,
          };
        } else if (chunk.timings?.cache_n !== undefined) usage = { ...usage, cachedTokens: chunk.timings.cache_n };
      };
      try {
        for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
          idle.refresh();
          line += decoder.decode(bytes, { stream: true });
          for (let nl = line.indexOf('\n'); nl !== -1; nl = line.indexOf('\n')) {
            const current = line.slice(0, nl).replace(/\r$/, '');
            line = line.slice(nl + 1);
            if (current.startsWith('data:')) onData(current.slice(5).trim());
          }
          if (line.length > maxLineChars) throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: `an event line longer than ${maxLineChars} characters` } });
        }
      } finally {
        clearTimeout(idle);
      }
      if (finishReason === undefined) {
        // The member's stream ended without its last chunk: it died or the connection was cut.
        if (!isStarted) throw this.#down('the stream ended before any output');
        this.#down('the stream ended early');
        throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: 'the stream ended before the answer did' } });
      }
      start();
      for (const call of [...calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c)) {
        const toolCall: ToolCall = { id: call.id || `call_${id}_${calls.size}`, name: call.name, arguments: call.arguments || '{}' };
        queue.push({ type: 'tool_call', id, call: toolCall });
      }
      if (usage.completionTokens === 0) usage = { ...usage, completionTokens: pieces };
      if (request.isWarmupOnly) usage = { ...usage, completionTokens: 0 };
      const endedAt = performance.now();
      queue.push({ type: 'done', id, finishReason: calls.size > 0 && finishReason === 'stop' ? 'tool_calls' : finishReason, usage, timings: { prefillMs: (firstAt ?? endedAt) - startedAt, decodeMs: endedAt - (firstAt ?? endedAt) }, savedPrefixBytes: 0, truncated });
      queue.close();
      report('ok');
    } catch (err) {
      const reason: unknown = abort.signal.reason;
      if (reason instanceof MemberLost) {
        // Nothing sent yet: another member may serve it (the scheduler retries). Else the stream ends with an error.
        queue.fail(new FlintError(isStarted ? 'FLINT_ERR_UPSTREAM_FAILED' : 'FLINT_ERR_UPSTREAM_UNAVAILABLE', { details: { member, detail: reason.detail } }));
        report(isStarted ? 'failed' : 'unavailable');
        return;
      }
      if (abort.signal.aborted) {
        // Cancelled (client gone, deadline, buffer limit): the member stops when its connection closes.
        const endedAt = performance.now();
        start();
        queue.push({ type: 'done', id, finishReason: 'cancelled', usage: { ...usage, completionTokens: usage.completionTokens || pieces }, timings: { prefillMs: (firstAt ?? endedAt) - startedAt, decodeMs: endedAt - (firstAt ?? endedAt) }, savedPrefixBytes: 0 });
        queue.close();
        report('cancelled');
        return;
      }
      const failure = err instanceof FlintError ? err : new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: describe(err) }, cause: err });
      queue.fail(failure);
      report(failure.code === 'FLINT_ERR_UPSTREAM_UNAVAILABLE' ? 'unavailable' : failure.code === 'FLINT_ERR_UPSTREAM_REJECTED' ? 'rejected' : 'failed');
    }
  }

  /**
   * The member is unavailable: marked down (its slots leave the pool until a probe succeeds)
   * unless it stays up (it only said it is busy, or a reused connection was reset); returns the
   * retryable error.
   */
  #down(detail: string, staysUp = false): FlintError {
    if (!staysUp) this.#setState(false, detail);
    return new FlintError('FLINT_ERR_UPSTREAM_UNAVAILABLE', { details: { member: this.settings.name, detail } });
  }

  /** Marks the member down for `detail` and returns the stop reason of its requests. */
  #lost(detail: string): MemberLost {
    this.#setState(false, detail);
    return new MemberLost(detail);
  }

  #setState(isUp: boolean, reason: string): void {
    if (this.#isUp === isUp || this.#isDisposed) return;
    this.#isUp = isUp;
    if (!isUp) for (const stop of [...this.#inFlight]) stop(new MemberLost(reason));
    if (isUp) this.#logger.info({ url: this.settings.url, kind: this.settings.kind }, 'upstream member up');
    else this.#logger.warn({ url: this.settings.url, reason }, 'upstream member down');
    for (const handler of this.#stateHandlers) handler(isUp, reason);
  }

  /**
   * The member's slots and queue where its kind exports them: Flint's `/v1/flint/status`,
   * llama-server's `/slots` (and its `--metrics` queue), vLLM's `/metrics`. Left unknown when
   * they cannot be read (Ollama, other OpenAI servers, a member without the endpoint).
   */
  async #readLoad(): Promise<void> {
    try {
      const load = await this.#fetchLoad();
      if (!load) return;
      this.#load = load;
      this.#observer?.onLoad?.(this.settings.name, load);
    } catch {
      // No load known this time: routing goes by the front's own slots.
    }
  }

  #fetchLoad(): Promise<MemberLoad | undefined> {
    return fetchMemberLoad(this.settings, (pathname) => this.#fetch(pathname, { method: 'GET', signal: AbortSignal.timeout(this.#timeouts.probeTimeoutMs) }));
  }

  #fetch(pathname: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.settings.key !== '') headers.set('authorization', `Bearer ${this.settings.key}`);
    return fetch(new URL(pathname, this.settings.url.endsWith('/') ? this.settings.url : `${this.settings.url}/`), { ...init, headers });
  }
}

/** The parts of an OpenAI-compatible stream chunk (chat or completions) the front reads. */
interface StreamChunk {
  choices?: Array<{
    text?: string;
    finish_reason?: string | null;
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>;
    };
  }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } | null } | null;
  /** llama-server's own figures: `cache_n` prompt tokens came from its cache. */
  timings?: { cache_n?: number };
  error?: { message?: string };
  /** llama.cpp's native `/infill` stream: text, and the last object (`stop: true`) with its counts. */
  content?: string;
  stop?: boolean;
  stop_type?: string;
  tokens_evaluated?: number;
  tokens_predicted?: number;
  truncated?: boolean;
}

function toFinishReason(reason: string): FinishReason {
  if (reason === 'length') return 'length';
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_calls';
  return 'stop';
}

/** The first model id of a `/v1/models` answer. */
function firstModelId(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { data?: Array<{ id?: unknown }> }).data?.[0]?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** llama-server's refusal of a prompt longer than its slot's context, as Flint's own context error. */
function contextOverflowOf(body: string): FlintError | undefined {
  try {
    const error = (JSON.parse(body) as { error?: { type?: unknown; n_prompt_tokens?: unknown; n_ctx?: unknown } }).error;
    if (error?.type !== 'exceed_context_size_error') return undefined;
    return new FlintError('FLINT_ERR_CONTEXT_OVERFLOW', {
      details: { contextSize: Number(error.n_ctx) || 0, promptTokens: Number(error.n_prompt_tokens) || 0, detail: '' },
    });
  } catch {
    return undefined;
  }
}

/** The `error.message` of an OpenAI-style error body, else a trimmed body. */
function errorMessageOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const message = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message);
    if (typeof message === 'string' && message.length > 0) return message.slice(0, 2_000);
  } catch {
    // not JSON
  }
  const trimmed = body.trim();
  return trimmed.length > 0 ? trimmed.slice(0, 500) : undefined;
}

/** A connection reset or closed by the peer while the request was sent (not a refusal, a timeout or a DNS failure). */
function isConnectionReset(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } })?.cause?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

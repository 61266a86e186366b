import { FlintError } from '../errors/FlintError.js';
import { toWireError, type WireError } from '../errors/toWireError.js';
import type { Gateway, Generation } from './Gateway.js';
import type { Logger } from './Logger.js';
import type { RunRegistry } from './RunRegistry.js';
import type { TenantLimits } from './TenantLimits.js';
import type { RequestObserver, RequestSummary } from './RequestObserver.js';
import { TimedEvents, timedOut } from './TimedEvents.js';
import { LinkedAbort } from '../utils/LinkedAbort.js';
import type { FinishReason, GenerateRequest, GenerationEvent, GenerationTimings, SlotPlacement, Usage } from './types.js';

/** Why a run was stopped before its natural end; picks the outcome, status and log level. */
export type AbortReason = 'client_gone' | 'cancelled' | 'deadline' | 'shutdown';

/** The abort reason a signal carries: `signal.reason` of every abort Flint makes. */
export class RunAborted extends DOMException {
  readonly reason: AbortReason;

  constructor(reason: AbortReason) {
    super(`run stopped: ${reason}`, 'AbortError');
    this.reason = reason;
  }
}

/** Queue place and prompt tokens evaluated, while a request has produced nothing yet. */
export interface Progress {
  evaluatedTokens: number;
  totalTokens: number;
  queuePosition: number;
}

/** What a run yields: the generation's events, and `tick`s while a stream waits without output. */
export type RunEvent = GenerationEvent | { readonly type: 'tick'; readonly progress: Progress };

/** The prompt-cache scope of a tenant under config `cache.scope`. */
export function toCacheScope(policy: 'key' | 'shared', tenant: string): string {
  return policy === 'shared' ? 'shared' : `t:${tenant}`;
}

/** Where a run comes from and where it reports; the transport fills it in. */
export interface RunContext {
  readonly api: RequestSummary['api'];
  /** Route for the summary line (`/v1/chat/completions`, ...). */
  readonly route: string;
  readonly observer: RequestObserver;
  /** Child logger of the request or session. */
  readonly log: Logger;
  /** The edge's signal (client gone, client cancel); its reason should be a RunAborted. */
  readonly signal: AbortSignal;
  /** Whole-request deadline, queueing included. */
  readonly deadlineMs: number;
  /**
   * Streams only: how long `start` waits for admission before it returns anyway (so fast
   * failures stay protocol errors before any byte), then the keep-alive `tick` interval.
   */
  readonly patienceMs?: number;
  /** Runs in flight, for graceful shutdown. */
  readonly registry?: RunRegistry;
  /** Per-tenant concurrency: the run holds one of `tenant`'s generations from start to dispose. */
  readonly limits?: { readonly tenantLimits: TenantLimits; readonly tenant: string };
  /** Whose prompt cache the request may use (the tenant, or a shared scope); affinity keys are scoped by it too. */
  readonly cacheScope?: string;
}

/**
 * One request from arrival to its last byte, the same for every protocol and transport: it owns
 * the deadline, the wait for admission, typed abort reasons, the in-stream error mapping and
 * the one summary (metrics and log line), and holds the generation so that its slot is freed on
 * every way out (`await using run = GenerationRun.begin(...)`). Protocols give it a request and
 * render its events; transports only frame bytes.
 */
export class GenerationRun implements AsyncDisposable {
  readonly #context: RunContext;
  readonly #arrived = performance.now();
  /** The edge's signal, the deadline and stops from inside the server (a cancel by id, shutdown). */
  readonly #abort: LinkedAbort;
  readonly #timer: NodeJS.Timeout;
  /** The signal the generation runs under: edge, deadline, or the run's own stop. */
  readonly signal: AbortSignal;
  readonly progress: Progress = { evaluatedTokens: 0, totalTokens: 0, queuePosition: 0 };
  /** Where the generation runs, once it started (for sticky-routing tokens). */
  placement: SlotPlacement | undefined;
  /** The prompt's tokens, once it started. */
  promptTokens = 0;
  #model: string | undefined;
  #generation: Generation | undefined;
  #events: TimedEvents | undefined;
  #pending: IteratorResult<GenerationEvent> | undefined;
  #hasOutput = false;
  #firstOutputAt: number | undefined;
  #done: { finishReason: FinishReason; usage: Usage; timings: GenerationTimings } | undefined;
  #isReported = false;
  #releaseGeneration: (() => void) | undefined;

  private constructor(context: RunContext) {
    this.#context = context;
    this.#abort = new LinkedAbort([context.signal]);
    this.#timer = setTimeout(() => this.#abort.abort(new RunAborted('deadline')), context.deadlineMs);
    this.#timer.unref();
    this.signal = this.#abort.signal;
    context.registry?.add(this);
  }

  /** A run for one arriving request (its clock starts now). */
  static begin(context: RunContext): GenerationRun {
    return new GenerationRun(context);
  }

  /** The model name the request resolved to, for the summary line. */
  setModel(model: string): void {
    this.#model = model;
  }

  /**
   * Starts the generation and waits for admission and tokenization (the `start` event), or for
   * `patienceMs` on a stream. A failure up to here is reported and thrown: no byte is out yet.
   */
  async start(gateway: Gateway, request: GenerateRequest): Promise<void> {
    try {
      const limits = this.#context.limits;
      if (limits) this.#releaseGeneration = limits.tenantLimits.acquireGeneration(limits.tenant);
    } catch (err) {
      throw this.fail(err);
    }
    const scope = this.#context.cacheScope;
    const scoped = scope === undefined ? request : { ...request, cacheScope: scope, cacheKey: request.cacheKey === undefined ? undefined : `${scope}:${request.cacheKey}` };
    const generation = (this.#generation = gateway.start(scoped, { signal: this.signal }));
    const events = (this.#events = new TimedEvents(generation.events));
    const patienceMs = this.#context.patienceMs;
    const startBy = performance.now() + (patienceMs ?? 0);
    try {
      for (;;) {
        const next = await events.next(patienceMs === undefined ? undefined : startBy - performance.now());
        if (next === timedOut) return;
        if (next.done) throw new FlintError('FLINT_ERR_INTERNAL');
        const event = next.value;
        if (event.type === 'progress') this.#onProgress(event);
        else {
          if (event.type === 'start') {
            this.placement = event.placement;
            this.promptTokens = event.promptTokens;
          }
          // `start`, or output of a run that skipped it: handed to `events()` first.
          this.#pending = next;
          return;
        }
      }
    } catch (err) {
      throw this.fail(err);
    }
  }

  /**
   * The events after `start`. A stream that has produced no output gets a `tick` every
   * `patienceMs` (queue place, prefill progress). Failures are thrown; `failInStream` maps them.
   */
  async *events(): AsyncGenerator<RunEvent> {
    const events = this.#events;
    if (!events) throw new FlintError('FLINT_ERR_INTERNAL');
    const tickMs = this.#context.patienceMs;
    for (;;) {
      // Keep-alive waits only until output flows: no timer on the per-token path.
      const next = this.#pending ?? (await events.next(tickMs !== undefined && !this.#hasOutput ? tickMs : undefined));
      this.#pending = undefined;
      if (next === timedOut) {
        yield { type: 'tick', progress: { ...this.progress } };
        continue;
      }
      if (next.done) return;
      const event = next.value;
      if (event.type === 'progress') this.#onProgress(event);
      else if (event.type === 'start') {
        this.placement = event.placement;
        this.promptTokens = event.promptTokens;
      } else if (event.type === 'done') this.#done = event;
      else if (!this.#hasOutput) {
        this.#hasOutput = true;
        this.#firstOutputAt = performance.now();
      }
      yield event;
      if (event.type === 'done') return;
    }
  }

  /** Stops the run (a `response.cancel`, `POST .../cancel`, shutdown): it ends as cancelled with `reason`. */
  stop(reason: AbortReason): void {
    this.#abort.abort(new RunAborted(reason));
  }

  /** Seconds from arrival to the first output, once there was some. */
  get timeToFirstOutputS(): number | undefined {
    return this.#firstOutputAt === undefined ? undefined : (this.#firstOutputAt - this.#arrived) / 1000;
  }

  /** Reports a run that ended with its `done` (or a terminal event the protocol rendered). */
  finish(status = 200): void {
    const reason = this.#abortReason();
    const isCut = this.#done?.finishReason === 'cancelled';
    this.#report({ status, outcome: isCut ? outcomeOf(reason) : 'ok' });
  }

  /** Reports a failure before the first byte and returns it, for `throw run.fail(err)`. */
  fail(err: unknown): unknown {
    const wire = this.#wire(err);
    this.#report({ status: wire.status, outcome: wire.status === 499 ? 'cancelled' : 'error', errorCode: err instanceof FlintError ? err.code : wire.body.error.code });
    return err instanceof RunAborted || isAbort(err) ? this.#toFlintError(err) : err;
  }

  /** Reports a failure after the first byte and returns the wire error the protocol renders in-stream. */
  failInStream(err: unknown): WireError {
    const wire = this.#wire(err);
    if (!wire.isExpected) this.#context.log.error({ err }, 'generation failed');
    this.#report({ status: 200, outcome: 'error', errorCode: err instanceof FlintError ? err.code : wire.body.error.code });
    return wire;
  }

  async dispose(): Promise<void> {
    clearTimeout(this.#timer);
    await this.#generation?.dispose();
    // What the generation ran under is over: the edge's signal (a socket's, for its lifetime) keeps no listener of it.
    this.#abort.unlink();
    this.#releaseGeneration?.();
    this.#context.registry?.delete(this);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  #onProgress(event: Extract<GenerationEvent, { type: 'progress' }>): void {
    // The queue reports places, the worker evaluated tokens: keep the latest of each.
    if (event.queuePosition > 0) this.progress.queuePosition = event.queuePosition;
    else Object.assign(this.progress, { evaluatedTokens: event.evaluatedTokens, totalTokens: event.totalTokens, queuePosition: 0 });
  }

  #abortReason(): AbortReason | undefined {
    const reason: unknown = this.signal.reason;
    return this.signal.aborted ? (reason instanceof RunAborted ? reason.reason : 'client_gone') : undefined;
  }

  /** An abort before any byte, as the error its reason means. */
  #toFlintError(err: unknown): FlintError {
    const reason = err instanceof RunAborted ? err.reason : (this.#abortReason() ?? 'client_gone');
    switch (reason) {
      case 'deadline':
        return new FlintError('FLINT_ERR_DEADLINE', { details: { detail: `${this.#context.deadlineMs} ms` }, cause: err });
      case 'shutdown':
        return new FlintError('FLINT_ERR_SHUTTING_DOWN', { details: { retryAfterS: 5 }, cause: err });
      default:
        return new FlintError('FLINT_ERR_CLIENT_CLOSED', { cause: err });
    }
  }

  #wire(err: unknown): WireError {
    return toWireError(err instanceof RunAborted || isAbort(err) ? this.#toFlintError(err) : err);
  }

  #report(partial: Pick<RequestSummary, 'status' | 'outcome'> & { errorCode?: string | null }): void {
    if (this.#isReported) return;
    this.#isReported = true;
    const done = this.#done;
    const summary: RequestSummary = {
      api: this.#context.api,
      ...partial,
      finishReason: done?.finishReason,
      usage: done?.usage,
      timings: done?.timings,
      timeToFirstTokenS: this.timeToFirstOutputS,
      durationS: (performance.now() - this.#arrived) / 1000,
    };
    this.#context.observer.onRequestFinished(summary);
    this.#context.log.info(
      {
        api: summary.api,
        route: this.#context.route,
        model: this.#model,
        status: summary.status,
        outcome: summary.outcome,
        finishReason: summary.finishReason,
        promptTokens: summary.usage?.promptTokens,
        cachedTokens: summary.usage?.cachedTokens,
        completionTokens: summary.usage?.completionTokens,
        ttftMs: summary.timeToFirstTokenS === undefined ? undefined : Math.round(summary.timeToFirstTokenS * 1e4) / 10,
        durationMs: Math.round(summary.durationS * 1e4) / 10,
        errorCode: partial.errorCode ?? undefined,
      },
      'request finished',
    );
  }
}

/** How a run cut short by `reason` is counted: a deadline or shutdown is no client cancel. */
function outcomeOf(reason: AbortReason | undefined): RequestSummary['outcome'] {
  if (reason === 'deadline') return 'timeout';
  if (reason === 'shutdown') return 'error';
  return 'cancelled';
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

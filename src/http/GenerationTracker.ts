import type { FastifyRequest } from 'fastify';
import type { RequestObserver, RequestSummary } from '../core/RequestObserver.js';
import type { FinishReason, GenerationTimings, Usage } from '../core/types.js';
import { FlintError } from '../errors/FlintError.js';
import { toWireError } from '../errors/toWireError.js';

/**
 * Follows one API request from arrival to its last byte and reports it once: the summary
 * log line and the observer (metrics). Never sees prompt or completion text.
 */
export class GenerationTracker {
  readonly #api: RequestSummary['api'];
  readonly #observer: RequestObserver;
  readonly #request: FastifyRequest;
  readonly #arrived = performance.now();
  #model: string | undefined;
  #firstTextAt: number | undefined;
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;
  #timings: GenerationTimings | undefined;
  #isReported = false;

  constructor(api: RequestSummary['api'], observer: RequestObserver, request: FastifyRequest) {
    this.#api = api;
    this.#observer = observer;
    this.#request = request;
  }

  /** The model name the request resolved to, for the summary line. */
  setModel(model: string): void {
    this.#model = model;
  }

  onText(): void {
    this.#firstTextAt ??= performance.now();
  }

  onDone(event: { finishReason: FinishReason; usage: Usage; timings: GenerationTimings }): void {
    this.#finishReason = event.finishReason;
    this.#usage = event.usage;
    this.#timings = event.timings;
  }

  /** Reports a request that completed (possibly cancelled by its client, or failed after its first byte). */
  finish(status: number, outcome?: 'error'): void {
    this.#report({ status, outcome: outcome ?? (this.#finishReason === 'cancelled' ? 'cancelled' : 'ok') });
  }

  /** Reports a failed request and returns the error, for `throw tracker.fail(err)`. */
  fail(err: unknown): unknown {
    const isAbort = err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
    const wire = toWireError(err);
    this.#report({
      status: isAbort ? 499 : wire.status,
      outcome: isAbort ? 'cancelled' : 'error',
      errorCode: err instanceof FlintError ? err.code : wire.body.error.code,
    });
    return err;
  }

  #report(partial: Pick<RequestSummary, 'status' | 'outcome'> & { errorCode?: string | null }): void {
    if (this.#isReported) return;
    this.#isReported = true;
    const now = performance.now();
    const summary: RequestSummary = {
      api: this.#api,
      ...partial,
      finishReason: this.#finishReason,
      usage: this.#usage,
      timings: this.#timings,
      timeToFirstTokenS: this.#firstTextAt === undefined ? undefined : (this.#firstTextAt - this.#arrived) / 1000,
      durationS: (now - this.#arrived) / 1000,
    };
    this.#observer.onRequestFinished(summary);
    this.#request.log.info(
      {
        api: summary.api,
        route: this.#request.routeOptions.url,
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

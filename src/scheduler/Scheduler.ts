import { FlintError } from '../errors/FlintError.js';
import type { Gateway, GenerateOptions, Readiness } from '../core/Gateway.js';
import type { Logger } from '../core/Logger.js';
import type { GenerateRequest, GenerationEvent, ModelInfo } from '../core/types.js';
import type { WorkerClient, WorkerEvent } from '../pool/WorkerClient.js';
import { toFingerprint, type PromptFingerprint } from './fingerprint.js';
import { SlotTable, type RouteKind, type SlotLease } from './SlotTable.js';

/** Admission limits (config `scheduler`). */
export interface SchedulerLimits {
  readonly maxQueueLength: number;
  readonly maxQueueWaitMs: number;
  /** Generated text held for a consumer that is not reading before its generation is cancelled. */
  readonly maxStreamBufferBytes: number;
}

/** Observations the scheduler reports; metrics/ implements them. */
export interface SchedulerObserver {
  onQueueChange?(depth: number): void;
  onQueueWait?(seconds: number): void;
  /** Busy and total slots per worker index (a worker that went down is absent). */
  onSlotsChange?(byWorker: ReadonlyMap<number, { busy: number; total: number }>): void;
  onRoute?(route: RouteKind): void;
  /** The worker evaluated the prompt: how much came from the cache, and how the slot was chosen. */
  onPromptCache?(route: RouteKind, cachedTokens: number, restoredTokens: number): void;
  onSavedPrefixBytes?(workerIndex: number, bytes: number): void;
  /** A consumer stopped reading and its generation was cancelled at the buffer limit. */
  onStreamOverflow?(): void;
}

interface Waiter {
  readonly request: GenerateRequest;
  readonly fingerprint: PromptFingerprint;
  readonly resolve: (lease: SlotLease) => void;
  readonly reject: (err: unknown) => void;
  /** Its place in the queue changed. */
  readonly onMoved: () => void;
}

/**
 * Implements Gateway: admits requests into a bounded FIFO queue, leases a slot, relays the
 * worker's events and frees the slot only once the worker says it has stopped.
 */
export class Scheduler implements Gateway {
  readonly #limits: SchedulerLimits;
  readonly #logger: Logger;
  readonly #observer: SchedulerObserver;
  readonly #slots = new SlotTable();
  readonly #queue: Waiter[] = [];
  readonly #drains = new Set<Promise<void>>();
  #model: ModelInfo | undefined;
  #workersUp = 0;
  #workersTotal: number;
  #isClosing = false;

  constructor(limits: SchedulerLimits, workersTotal: number, logger: Logger, observer: SchedulerObserver = {}) {
    this.#limits = limits;
    this.#workersTotal = workersTotal;
    this.#logger = logger;
    this.#observer = observer;
  }

  get model(): ModelInfo | undefined {
    return this.#model;
  }

  /** Sets the served model's facts once the first worker has loaded it. */
  setModel(model: ModelInfo): void {
    this.#model = model;
  }

  readiness(): Readiness {
    if (this.#isClosing) return { isReady: false, reason: 'shutting down' };
    if (!this.#model) return { isReady: false, reason: 'model loading' };
    if (this.#workersUp < this.#workersTotal) return { isReady: false, reason: `${this.#workersUp} of ${this.#workersTotal} workers up` };
    return { isReady: true };
  }

  /** Adds a worker's slots (on start and after a restart) and serves waiting requests. */
  addWorker(worker: WorkerClient, slots: number): void {
    this.#workersUp++;
    this.#slots.addWorker(worker, slots);
    this.#reportSlots();
    this.#dispatch();
  }

  /** Removes a dead worker's slots; its in-flight requests were failed by its client. */
  removeWorker(index: number): void {
    if (this.#slots.removeWorker(index)) this.#workersUp--;
    this.#reportSlots();
  }

  async *generate(request: GenerateRequest, options: GenerateOptions): AsyncGenerator<GenerationEvent> {
    const { signal } = options;
    const queuedAt = performance.now();
    const fingerprint = toFingerprint(request.input);
    let lease = this.#leaseNow(request, fingerprint, signal);
    if (!lease) {
      // Queued: report the position now and whenever it changes, so transports can keep clients informed.
      const waiting = this.#enqueue(request, fingerprint, signal);
      for (;;) {
        yield { type: 'progress', evaluatedTokens: 0, totalTokens: 0, queuePosition: waiting.position() };
        const next = await waiting.next();
        if (next) {
          lease = next;
          break;
        }
      }
    }
    this.#observer.onRoute?.(lease.route);
    const queueMs = performance.now() - queuedAt;
    this.#observer.onQueueWait?.(queueMs / 1000);
    const cancel = new AbortController();
    const onAbort = () => cancel.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    let events: AsyncIterator<WorkerEvent> | undefined;
    let isFinished = false;
    try {
      const onOverflow = () => {
        this.#logger.warn({ reqId: request.id, limitBytes: this.#limits.maxStreamBufferBytes }, 'consumer stopped reading; generation cancelled');
        this.#observer.onStreamOverflow?.();
      };
      events = lease.worker.run(request.id, lease.slot, request, cancel.signal, { maxBufferedBytes: this.#limits.maxStreamBufferBytes, onOverflow })[Symbol.asyncIterator]();
      for (;;) {
        const next = await events.next();
        if (next.done) throw new FlintError('FLINT_ERR_WORKER_CRASHED', { details: { detail: 'stream ended without a result' } });
        const event = next.value;
        if (event.type === 'started') {
          this.#observer.onPromptCache?.(lease.route, event.cachedTokens, event.restoredTokens);
          yield { type: 'start', promptTokens: event.promptTokens, cachedTokens: event.cachedTokens, placement: { worker: lease.worker.index, slot: lease.slot } };
        }
        else if (event.type === 'delta') yield { type: 'delta', text: event.text, tokens: event.tokens };
        else if (event.type === 'reasoning') yield { type: 'reasoning', text: event.text, tokens: event.tokens, raw: event.raw };
        else if (event.type === 'progress') yield { type: 'progress', evaluatedTokens: event.evaluatedTokens, totalTokens: event.totalTokens, queuePosition: 0 };
        else if (event.type === 'tool_call') yield { type: 'tool_call', call: event.call };
        else {
          isFinished = true;
          this.#observer.onSavedPrefixBytes?.(lease.worker.index, event.savedPrefixBytes);
          yield { type: 'done', finishReason: event.finishReason, usage: event.usage, timings: { ...event.timings, queueMs }, reasoning: event.reasoning };
          return;
        }
      }
    } catch (err) {
      isFinished = true; // a failed run has already stopped in the worker (or the worker is gone)
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (isFinished || !events) this.#release(lease);
      else this.#drainThenRelease(lease, events, cancel);
    }
  }

  /** Drops the slot pin of a session that ended (a closed WebSocket). */
  releaseAffinity(cacheKey: string): void {
    this.#slots.forgetAffinity(cacheKey);
  }

  /** Stops admitting work and fails queued requests. In-flight ones end through their signals. */
  async close(): Promise<void> {
    this.#isClosing = true;
    for (const waiter of this.#queue.splice(0)) waiter.reject(new FlintError('FLINT_ERR_SHUTTING_DOWN', { details: { retryAfterS: 5 } }));
    this.#observer.onQueueChange?.(0);
    await Promise.allSettled([...this.#drains]);
  }

  /** Admission: throws when the request cannot be served or queued; a lease when a slot is free now, else undefined (queue it). */
  #leaseNow(request: GenerateRequest, fingerprint: PromptFingerprint, signal: AbortSignal): SlotLease | undefined {
    signal.throwIfAborted();
    if (this.#isClosing) throw new FlintError('FLINT_ERR_SHUTTING_DOWN', { details: { retryAfterS: 5 } });
    if (this.#slots.total === 0) {
      throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: this.readiness().reason ?? 'no worker is up', retryAfterS: 2 } });
    }
    const lease = this.#queue.length === 0 ? this.#slots.lease(fingerprint, request.cacheKey, request.slotHint) : undefined;
    if (lease) {
      this.#reportSlots();
      return lease;
    }
    if (this.#queue.length >= this.#limits.maxQueueLength) {
      throw new FlintError('FLINT_ERR_QUEUE_FULL', { details: { queued: this.#queue.length, retryAfterS: 1 } });
    }
    return undefined;
  }

  /**
   * Puts a request in the queue. `next()` resolves with the lease once a slot is assigned, or with
   * undefined when the request's position changed; it rejects on abort, timeout or shutdown. A lease
   * assigned after its request was aborted is released at once, never lost.
   */
  #enqueue(request: GenerateRequest, fingerprint: PromptFingerprint, signal: AbortSignal): { position(): number; next(): Promise<SlotLease | undefined> } {
    let settled: { lease: SlotLease } | { error: unknown } | undefined;
    let wake: (() => void) | undefined;
    let isMoved = false;
    const cleanup = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      const at = this.#queue.indexOf(waiter);
      if (at !== -1) {
        this.#queue.splice(at, 1);
        this.#notifyPositions(at);
      }
      this.#observer.onQueueChange?.(this.#queue.length);
    };
    const waiter: Waiter = {
      request,
      fingerprint,
      resolve: (lease) => {
        cleanup();
        if (signal.aborted) this.#release(lease);
        else settled = { lease };
        wake?.();
      },
      reject: (err) => {
        cleanup();
        settled = { error: err };
        wake?.();
      },
      onMoved: () => {
        isMoved = true;
        wake?.();
      },
    };
    const onAbort = () => waiter.reject(signal.reason);
    const timer = setTimeout(
      () => waiter.reject(new FlintError('FLINT_ERR_QUEUE_TIMEOUT', { details: { waitMs: this.#limits.maxQueueWaitMs, retryAfterS: 2 } })),
      this.#limits.maxQueueWaitMs,
    );
    signal.addEventListener('abort', onAbort, { once: true });
    this.#queue.push(waiter);
    this.#observer.onQueueChange?.(this.#queue.length);
    return {
      position: () => this.#queue.indexOf(waiter) + 1,
      next: async () => {
        while (!settled && !isMoved) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        isMoved = false;
        if (!settled) return undefined;
        if ('error' in settled) throw settled.error;
        return settled.lease;
      },
    };
  }

  /** Waiters behind `from` moved up one place. */
  #notifyPositions(from: number): void {
    for (let i = from; i < this.#queue.length; i++) this.#queue[i].onMoved();
  }

  #release(lease: SlotLease): void {
    this.#slots.release(lease);
    this.#reportSlots();
    this.#dispatch();
  }

  /** The consumer left early: cancel, wait for the worker to confirm, then free the slot. */
  #drainThenRelease(lease: SlotLease, events: AsyncIterator<WorkerEvent>, cancel: AbortController): void {
    cancel.abort();
    const drain = (async () => {
      try {
        for (let next = await events.next(); !next.done; next = await events.next()) {
          if (next.value.type === 'done') break;
        }
      } catch {
        // The worker failed or died while stopping; either way the slot is no longer running.
      } finally {
        this.#release(lease);
      }
    })();
    this.#drains.add(drain);
    void drain.finally(() => this.#drains.delete(drain));
  }

  /** Hands free slots to waiting requests, oldest first. */
  #dispatch(): void {
    while (this.#queue.length > 0) {
      const lease = this.#slots.lease(this.#queue[0].fingerprint, this.#queue[0].request.cacheKey, this.#queue[0].request.slotHint);
      if (!lease) return;
      this.#queue[0].resolve(lease);
      this.#reportSlots();
    }
  }

  #reportSlots(): void {
    this.#observer.onSlotsChange?.(this.#slots.byWorker());
  }
}

import { FlintError } from '../errors/FlintError.js';
import type { Gateway, GenerateOptions, Generation, Readiness } from '../core/Gateway.js';
import type { Logger } from '../core/Logger.js';
import type { GenerateRequest, GenerationEvent, ModelInfo, PromptRender } from '../core/types.js';
import type { EngineMember, WorkerRun } from '../pool/EngineMember.js';
import { toFingerprint, type PromptFingerprint } from './fingerprint.js';
import { SlotTable, type AffinityBreak, type RouteKind, type SlotLease } from './SlotTable.js';
import type { GatewayState } from '../core/status.js';
import { LinkedAbort } from '../utils/LinkedAbort.js';

/** Admission limits (config `scheduler`). */
export interface SchedulerLimits {
  readonly maxQueueLength: number;
  readonly maxQueueWaitMs: number;
  /** Generated text held for a consumer that is not reading before its generation is cancelled. */
  readonly maxStreamBufferBytes: number;
  /** Times a request whose remote member failed before any output is tried on another (config `upstream.retries`). */
  readonly retriesBeforeOutput?: number;
  /** R: named members a session's key may run on, its first R by rendezvous rank (config `upstream.candidates`). */
  readonly memberCandidates?: number;
  /** A chat answer cut by its member's failure goes on once on a member that can continue it (config `upstream.migrate`). */
  readonly migrateAfterOutput?: boolean;
}

/** Observations the scheduler reports; metrics/ implements them. */
export interface SchedulerObserver {
  onQueueChange?(depth: number): void;
  onQueueWait?(seconds: number): void;
  /** Busy and total slots per worker index (a worker that went down is absent). */
  onSlotsChange?(byWorker: ReadonlyMap<number, { busy: number; total: number }>): void;
  onRoute?(route: RouteKind): void;
  /** A session could not go back to its slot (see AffinityBreak for the causes). */
  onAffinityBreak?(cause: AffinityBreak): void;
  /** The worker evaluated the prompt: how much came from the cache, and how the slot was chosen. */
  onPromptCache?(route: RouteKind, cachedTokens: number, restoredTokens: number, copiedTokens: number): void;
  /** How the worker rendered a chat prompt (reused, incremental, full) and how long it took. */
  onPromptRender?(render: PromptRender): void;
  /** A chat request went to its worker: messages sent, and messages the worker kept from the slot's previous request. */
  onChatMessages?(sent: number, kept: number): void;
  onSavedPrefixBytes?(workerIndex: number, bytes: number): void;
  /** A request evicted a slot's prefix that was saved while the slot was idle, or had to save it first. */
  onEvictionSave?(kind: 'idle' | 'critical'): void;
  /** A consumer stopped reading and its generation was cancelled at the buffer limit. */
  onStreamOverflow?(): void;
  /** A request was tried again on another member after its member failed before any output. */
  onRetry?(): void;
  /** A turn whose member failed mid-answer went on on another member (`ok`), or ended with the error (`failed`). */
  onMigration?(outcome: 'ok' | 'failed'): void;
}

/** The members a request may run on (undefined: any). */
type MemberFilter = (member: EngineMember) => boolean;

interface Waiter {
  readonly request: GenerateRequest;
  readonly fingerprint: PromptFingerprint;
  readonly only: MemberFilter | undefined;
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
  readonly #slots: SlotTable;
  readonly #queue: Waiter[] = [];
  readonly #drains = new Set<Promise<void>>();
  #model: ModelInfo | undefined;
  #workersUp = 0;
  #workersTotal: number;
  #isClosing = false;

  constructor(limits: SchedulerLimits, workersTotal: number, logger: Logger, observer: SchedulerObserver = {}) {
    this.#limits = limits;
    this.#slots = new SlotTable({ candidates: limits.memberCandidates });
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
    // Ready while any slot can serve; a worker that is restarting only degrades capacity.
    if (this.#slots.total === 0) return { isReady: false, reason: `${this.#workersUp} of ${this.#workersTotal} workers up` };
    return { isReady: true, reason: this.#workersUp < this.#workersTotal ? `${this.#workersUp} of ${this.#workersTotal} workers up` : undefined };
  }

  /** Adds a worker's slots (on start and after a restart) and serves waiting requests. */
  addWorker(worker: EngineMember, slots: number): void {
    this.#workersUp++;
    worker.onSavedPrefixBytes((bytes) => this.#observer.onSavedPrefixBytes?.(worker.index, bytes));
    this.#slots.addWorker(worker, slots);
    this.#reportSlots();
    this.#dispatch();
  }

  /** Removes a dead worker's slots; its in-flight requests were failed by its client. */
  removeWorker(index: number): void {
    if (this.#slots.removeWorker(index)) this.#workersUp--;
    this.#reportSlots();
  }

  start(request: GenerateRequest, options: GenerateOptions): Generation {
    return new ScheduledGeneration(request, options.signal, {
      leaseNow: (current, fingerprint, signal, only) => this.#leaseNow(current, fingerprint, signal, only),
      enqueue: (current, fingerprint, signal, only) => this.#enqueue(current, fingerprint, signal, only),
      canContinue: (except) => this.#slots.hasMember((m) => m.canContinue === true && m !== except),
      release: (lease) => this.#release(lease),
      noteHeld: (lease, tokens) => this.#slots.noteHeld(lease, tokens),
      track: (disposal) => {
        this.#drains.add(disposal);
        void disposal.finally(() => this.#drains.delete(disposal));
      },
      model: () => this.#model,
      limits: this.#limits,
      logger: this.#logger,
      observer: this.#observer,
    });
  }

  /** Every slot and the queue, for the status view. */
  status(): GatewayState {
    return { slots: this.#slots.snapshot(), queueDepth: this.#queue.length, queueLimit: this.#limits.maxQueueLength };
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
  #leaseNow(request: GenerateRequest, fingerprint: PromptFingerprint, signal: AbortSignal, only?: MemberFilter): SlotLease | undefined {
    signal.throwIfAborted();
    if (this.#isClosing) throw new FlintError('FLINT_ERR_SHUTTING_DOWN', { details: { retryAfterS: 5 } });
    if (this.#slots.total === 0) {
      throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: this.readiness().reason ?? 'no worker is up', retryAfterS: 2 } });
    }
    // An idle slot while others wait is one no waiter may take (outside their sessions' members): FIFO holds.
    const lease = this.#slots.lease(fingerprint, request.cacheKey, request.slotHint, request.cacheScope, only);
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
  #enqueue(request: GenerateRequest, fingerprint: PromptFingerprint, signal: AbortSignal, only?: MemberFilter): QueuedRequest {
    let settled: { lease: SlotLease } | { error: unknown } | undefined;
    let isTaken = false;
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
      only,
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
        isTaken = true;
        return settled.lease;
      },
      abandon: () => {
        // A lease assigned but never taken goes straight back.
        if (settled && 'lease' in settled && !isTaken) {
          isTaken = true;
          this.#release(settled.lease);
        }
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

  /** Gives idle slots to waiters in queue order; one whose members are all busy lets the next have a slot it may use. */
  #dispatch(): void {
    for (let i = 0; i < this.#queue.length && this.#slots.busy < this.#slots.total; ) {
      const waiter = this.#queue[i];
      const lease = this.#slots.lease(waiter.fingerprint, waiter.request.cacheKey, waiter.request.slotHint, waiter.request.cacheScope, waiter.only);
      if (!lease) {
        i++;
        continue;
      }
      waiter.resolve(lease); // leaves the queue
      this.#reportSlots();
    }
  }

  #reportSlots(): void {
    this.#observer.onSlotsChange?.(this.#slots.byWorker());
  }
}

/** A request waiting in the queue. */
interface QueuedRequest {
  /** 1-based place in the queue (0 once it left). */
  position(): number;
  /** The lease once assigned, undefined when the position changed; rejects on abort, timeout or shutdown. */
  next(): Promise<SlotLease | undefined>;
  /** The request gave up: a lease assigned meanwhile is released. */
  abandon(): void;
}

/** What a generation needs from its scheduler. */
interface SchedulerAccess {
  leaseNow(request: GenerateRequest, fingerprint: PromptFingerprint, signal: AbortSignal, only?: MemberFilter): SlotLease | undefined;
  enqueue(request: GenerateRequest, fingerprint: PromptFingerprint, signal: AbortSignal, only?: MemberFilter): QueuedRequest;
  /** Whether a live member other than `except` can continue an answer begun on another. */
  canContinue(except: EngineMember): boolean;
  release(lease: SlotLease): void;
  /** What the leased slot holds now, in tokens (for the status view). */
  noteHeld(lease: SlotLease, tokens: number): void;
  /** Registers a disposal in progress, so shutdown can wait for it. */
  track(disposal: Promise<void>): void;
  model(): ModelInfo | undefined;
  readonly limits: SchedulerLimits;
  readonly logger: Logger;
  readonly observer: SchedulerObserver;
}

/**
 * One generation's hold on a slot. The slot is released exactly once: as soon as the worker has
 * stopped (done, failed or died) and the generation is over, or by `dispose`, which first
 * cancels and waits for the worker's confirmation. Nothing depends on the consumer iterating.
 */
class ScheduledGeneration implements Generation {
  readonly events: AsyncIterable<GenerationEvent>;
  readonly #request: GenerateRequest;
  readonly #access: SchedulerAccess;
  /** Follows the caller's signal; dispose aborts it too: stops queueing or the worker. */
  readonly #abort: LinkedAbort;
  readonly #signal: AbortSignal;
  #queued: QueuedRequest | undefined;
  #lease: SlotLease | undefined;
  #run: WorkerRun | undefined;
  #isReleased = false;
  #disposal: Promise<void> | undefined;

  constructor(request: GenerateRequest, signal: AbortSignal, access: SchedulerAccess) {
    this.#request = request;
    this.#access = access;
    this.#abort = new LinkedAbort([signal]);
    this.#signal = this.#abort.signal;
    this.events = { [Symbol.asyncIterator]: () => this.#events() };
  }

  dispose(): Promise<void> {
    return (this.#disposal ??= this.#dispose());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #dispose(): Promise<void> {
    this.#abort.abort(new DOMException('generation disposed', 'AbortError'));
    this.#queued?.abandon();
    const run = this.#run;
    if (run) {
      const finished = run.finished.then(() => this.#release());
      this.#access.track(finished);
      await finished;
    } else this.#release();
  }

  #release(): void {
    if (this.#isReleased || !this.#lease) return;
    this.#isReleased = true;
    this.#abort.unlink();
    this.#access.release(this.#lease);
  }

  async *#events(): AsyncGenerator<GenerationEvent> {
    let isDone = false;
    try {
      yield* this.#generate();
      isDone = true;
    } finally {
      // A consumer that stops reading early without disposing still stops the worker.
      if (!isDone) void this.dispose();
    }
  }

  async *#generate(): AsyncGenerator<GenerationEvent> {
    const { observer, limits, logger } = this.#access;
    const original = this.#request;
    const signal = this.#signal;
    const queuedAt = performance.now();
    rejectTooLong(original, this.#access.model());
    const fingerprint = toFingerprint(original.input);
    const retries = limits.retriesBeforeOutput ?? 0;
    /** What the client has been sent of the answer: its start, and the text and tokens so far. */
    let started: Extract<GenerationEvent, { type: 'start' }> | undefined;
    let answer = '';
    let answerTokens = 0;
    /** Only answer text so far (no thought, no call): an answer another member can continue. */
    let isPlainAnswer = true;
    /** The request as it runs now: after a migration, the original continued from the answer so far. */
    let request = original;
    let isMigrated = false;
    /** Answer tokens the client had when its turn migrated. */
    let tokensBeforeMigration = 0;
    /** After a migration: the members that can continue the answer, but the one that failed. */
    let only: MemberFilter | undefined;
    for (let attempt = 0; ; attempt++) {
      const lease = yield* this.#admit(request, fingerprint, only, started !== undefined);
      if (!lease) return;
      observer.onRoute?.(lease.route);
      if (lease.affinityBreak) observer.onAffinityBreak?.(lease.affinityBreak);
      const queueMs = performance.now() - queuedAt;
      observer.onQueueWait?.(queueMs / 1000);
      const onOverflow = () => {
        logger.warn({ reqId: request.id, limitBytes: limits.maxStreamBufferBytes }, 'consumer stopped reading; generation cancelled');
        observer.onStreamOverflow?.();
      };
      let run: WorkerRun;
      try {
        run = this.#run = lease.worker.run(request.id, lease.slot, request, signal, { maxBufferedBytes: limits.maxStreamBufferBytes, onOverflow });
      } catch (err) {
        this.#release(); // the worker was already gone: nothing runs
        throw err;
      }
      if (run.messages) observer.onChatMessages?.(run.messages.sent, run.messages.kept);
      // The worker's last word frees the slot, read or not.
      void run.finished.then(() => this.#release());
      let hasOutput = false;
      let isCacheKnownAtEnd = false;
      // The answer's text is kept only while another member could continue it.
      const mayMigrate = !isMigrated && limits.migrateAfterOutput === true && original.input.type === 'chat' && this.#access.canContinue(lease.worker);
      try {
        for await (const event of run.events) {
          if (event.type !== 'progress') hasOutput = true;
          if (event.type === 'started') {
            isCacheKnownAtEnd = event.isCacheKnownAtEnd === true;
            if (!isCacheKnownAtEnd) observer.onPromptCache?.(lease.route, event.cachedTokens, event.restoredTokens, event.copiedTokens);
            this.#access.noteHeld(lease, event.promptTokens);
            if (event.render) observer.onPromptRender?.(event.render);
            if (event.evictionSave !== 'none') observer.onEvictionSave?.(event.evictionSave);
            // A migrated turn started long ago, as far as the client knows.
            if (started) continue;
            started = { type: 'start', promptTokens: event.promptTokens, cachedTokens: event.cachedTokens, placement: { worker: lease.worker.index, slot: lease.slot } };
            yield started;
          } else if (event.type === 'delta') {
            if (mayMigrate) answer += event.text;
            answerTokens += event.tokens;
            yield { type: 'delta', text: event.text, tokens: event.tokens };
          } else if (event.type === 'reasoning') {
            isPlainAnswer = false;
            yield { type: 'reasoning', text: event.text, tokens: event.tokens, raw: event.raw };
          } else if (event.type === 'progress') {
            if (!started) yield { type: 'progress', evaluatedTokens: event.evaluatedTokens, totalTokens: event.totalTokens, queuePosition: 0 };
          } else if (event.type === 'tool_call') {
            isPlainAnswer = false;
            yield { type: 'tool_call', call: event.call };
          } else {
            if (isCacheKnownAtEnd) observer.onPromptCache?.(lease.route, event.usage.cachedTokens, 0, 0);
            observer.onSavedPrefixBytes?.(lease.worker.index, event.savedPrefixBytes);
            this.#access.noteHeld(lease, event.usage.promptTokens + event.usage.completionTokens);
            if (isMigrated) observer.onMigration?.('ok');
            // Usage as the client asked for it: the original prompt, and every token of the answer.
            const usage = isMigrated && started ? { ...event.usage, promptTokens: started.promptTokens, cachedTokens: started.cachedTokens, completionTokens: tokensBeforeMigration + event.usage.completionTokens } : event.usage;
            yield { type: 'done', finishReason: event.finishReason, usage, timings: { ...event.timings, queueMs }, reasoning: event.reasoning, truncated: event.truncated };
            return;
          }
        }
        throw new FlintError('FLINT_ERR_WORKER_CRASHED', { details: { detail: 'stream ended without a result' } });
      } catch (err) {
        const isRetry = !hasOutput && attempt < retries && isRetryable(err);
        // Cut mid-answer by its member: once, the answer goes on from where it was, on a member that can continue it.
        const isMigration = !isRetry && hasOutput && started !== undefined && mayMigrate && isPlainAnswer && isMigratable(err);
        if (signal.aborted || this.#disposal || (!isRetry && !isMigration)) {
          if (isMigrated) observer.onMigration?.('failed');
          throw err;
        }
        await run.finished;
        // The failed attempt's lease goes back now (its run finished; releasing is idempotent).
        this.#release();
        this.#lease = undefined;
        this.#run = undefined;
        this.#isReleased = false;
        if (isMigration) {
          isMigrated = true;
          tokensBeforeMigration = answerTokens;
          const left = original.maxTokens === undefined ? undefined : Math.max(1, original.maxTokens - answerTokens);
          request = { ...original, continuation: (original.continuation ?? '') + answer, maxTokens: left, slotHint: undefined };
          const failed = lease.worker;
          only = (member) => member.canContinue === true && member !== failed;
          logger.warn({ reqId: request.id, member: lease.worker.routingName, answerChars: answer.length, reason: (err as Error).message }, 'member failed mid-answer; the turn goes on on another member');
        } else {
          observer.onRetry?.();
          logger.info({ reqId: request.id, attempt: attempt + 1, reason: (err as Error).message }, 'engine unavailable before any output; retrying on another');
        }
      }
    }
  }

  /**
   * Admission: a lease now, else a place in the queue (its position reported as `progress` now and
   * whenever it changes) until a slot is assigned. Undefined when disposed meanwhile.
   */
  async *#admit(request: GenerateRequest, fingerprint: PromptFingerprint, only: MemberFilter | undefined, isStarted: boolean): AsyncGenerator<GenerationEvent, SlotLease | undefined> {
    const signal = this.#signal;
    let lease = this.#access.leaseNow(request, fingerprint, signal, only);
    if (!lease) {
      const queued = (this.#queued = this.#access.enqueue(request, fingerprint, signal, only));
      for (;;) {
        // A migrated turn waits without telling: its client has its answer under way.
        if (!isStarted) yield { type: 'progress', evaluatedTokens: 0, totalTokens: 0, queuePosition: queued.position() };
        const next = await queued.next();
        if (next) {
          lease = next;
          break;
        }
      }
    }
    this.#lease = lease;
    if (this.#disposal) {
      // Disposed while the lease was on its way: nothing will run on it.
      this.#release();
      return undefined;
    }
    return lease;
  }
}

/** Failures after output that a turn may survive on another member: the member failed, not the request. */
function isMigratable(err: unknown): boolean {
  return err instanceof FlintError && (err.code === 'FLINT_ERR_UPSTREAM_FAILED' || err.code === 'FLINT_ERR_UPSTREAM_UNAVAILABLE');
}

/** Failures another member may not share: a remote engine that is down, overloaded or draining. */
function isRetryable(err: unknown): boolean {
  return err instanceof FlintError && err.code === 'FLINT_ERR_UPSTREAM_UNAVAILABLE';
}

/**
 * A prompt whose text alone needs more tokens than the context holds (even if every token were
 * the vocabulary's longest) is refused before it is queued, sent or tokenized: a 10 MB prompt
 * costs a character count here, not seconds of a worker's tokenizer.
 */
function rejectTooLong(request: GenerateRequest, model: ModelInfo | undefined): void {
  if (!model) return;
  const input = request.input;
  let chars = 0;
  if (input.type === 'text' && input.tokens) {
    if (input.tokens.length >= model.contextSize) {
      throw new FlintError('FLINT_ERR_CONTEXT_OVERFLOW', { param: request.inputParam ?? 'prompt', details: { contextSize: model.contextSize, promptTokens: input.tokens.length, detail: '' } });
    }
    return;
  }
  if (input.type === 'text') chars = input.prompt.length;
  else if (input.type === 'infill') {
    chars = input.prefix.length + input.suffix.length + (input.repo?.prompt.length ?? 0);
    // Extra chunks are cut to what fits, but all of them are tokenized first: they count too.
    for (const chunk of input.repo?.extra ?? []) chars += chunk.text.length + chunk.filename.length;
  }
  else {
    for (const message of input.messages) chars += message.content.length + (message.reasoning?.length ?? 0);
    chars += request.continuation?.length ?? 0;
  }
  const atLeast = Math.ceil(chars / Math.max(1, model.maxTokenChars));
  if (atLeast >= model.contextSize) {
    throw new FlintError('FLINT_ERR_CONTEXT_OVERFLOW', {
      param: request.inputParam ?? (input.type === 'chat' ? 'messages' : 'prompt'),
      details: { contextSize: model.contextSize, promptTokens: `at least ${atLeast}`, detail: '' },
    });
  }
}

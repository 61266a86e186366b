import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FlintError } from '../errors/FlintError.js';
import { isErrorCode } from '../errors/codes.js';
import { AsyncQueue } from '../utils/AsyncQueue.js';
import type { ChatMessage, GenerateRequest } from '../core/types.js';
import { sameMessage } from '../core/sameMessage.js';
import type { Logger } from '../core/Logger.js';
import type { EngineMember, RunOptions, WorkerEvent, WorkerRun } from './EngineMember.js';
import { IPC_VERSION, type DiskCacheReport, type ParentMessage, type WorkerMessage, type WorkerModelFacts, type WorkerSettings } from '../ipc/messages.js';

export type { RunOptions, WorkerEvent, WorkerRun } from './EngineMember.js';

/** One request's events on their way from the worker to the consumer. */
interface Stream {
  readonly queue: AsyncQueue<WorkerEvent>;
  readonly settle: () => void;
  /** UTF-16 code units of delta text received but not yet taken by the consumer (≈ bytes for code). */
  buffered: number;
  readonly limit: number;
  isOverflowed: boolean;
  readonly onOverflow: () => void;
}

/** How to start one worker process. */
export interface WorkerClientOptions {
  /** File URL or path of the worker entry module. */
  readonly modulePath: string;
  /** Extra Node flags for the child, e.g. a TypeScript loader. */
  readonly execArgv: readonly string[];
  readonly settings: WorkerSettings;
  readonly index: number;
  readonly startTimeoutMs: number;
  /** Liveness: a ping this often; a worker that has not answered for `heartbeatTimeoutMs` is killed (and restarted). */
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly logger: Logger;
  /** The member name sessions are hashed to, for a worker that drives a remote server (undefined: a local worker). */
  readonly routingName?: string;
}

/**
 * One worker child process. Requests are multiplexed by id; cancels are forwarded; when the
 * process dies every request in flight fails at once with FLINT_ERR_WORKER_CRASHED.
 */
export class WorkerClient implements EngineMember {
  readonly index: number;
  readonly facts: WorkerModelFacts;
  readonly routingName: string | undefined;
  /** Flint's workers continue an answer begun on another engine (GenerateRequest.continuation). */
  readonly canContinue = true;
  /** A worker that drives a remote member: that member reports itself full (see RenderedMember). */
  isSaturated = false;
  readonly #child: ChildProcess;
  readonly #logger: Logger;
  readonly #inFlight = new Map<string, Stream>();
  /** Per slot: the messages of the last chat request sent to it (the worker keeps the same). */
  readonly #sentMessages: Array<readonly ChatMessage[] | undefined> = [];
  readonly #exitHandlers: Array<(reason: string) => void> = [];
  readonly #savedHandlers: Array<(bytes: number) => void> = [];
  readonly #diskHandlers: Array<(report: DiskCacheReport) => void> = [];
  /** The disk cache as the worker found it at start, until a handler takes it. */
  #startDiskReport: DiskCacheReport | undefined;
  #exitReason: string | undefined;
  #isDisposed = false;

  readonly #heartbeat: NodeJS.Timeout;
  #lastPongAt = performance.now();
  #pingSeq = 0;

  private constructor(child: ChildProcess, index: number, ready: Extract<WorkerMessage, { type: 'ready' }>, logger: Logger, heartbeat: { intervalMs: number; timeoutMs: number }, routingName: string | undefined) {
    this.#child = child;
    this.index = index;
    this.routingName = routingName;
    this.facts = ready.facts;
    this.#startDiskReport = ready.diskCache;
    this.#logger = logger;
    child.on('message', (message: WorkerMessage) => this.#onMessage(message));
    child.once('exit', (code, signal) => this.#onExit(signal ? `killed by ${signal}` : `exited with code ${code}`));
    // A worker that hangs without dying (stuck native code, a blocked event loop) is treated like a crashed one.
    let lastTickAt = performance.now();
    this.#heartbeat = setInterval(() => {
      const now = performance.now();
      // A late tick means the gateway itself did not run (a long stall, or the process was stopped):
      // the worker's answers may be waiting unread, so it gets a fresh window instead of a SIGKILL.
      if (now - lastTickAt > 2 * heartbeat.intervalMs) this.#lastPongAt = Math.max(this.#lastPongAt, now - heartbeat.intervalMs);
      lastTickAt = now;
      if (now - this.#lastPongAt > heartbeat.timeoutMs) {
        this.#logger.warn({ silentMs: Math.round(performance.now() - this.#lastPongAt) }, 'worker stopped answering heartbeats; killing it');
        clearInterval(this.#heartbeat);
        this.#child.kill('SIGKILL');
        return;
      }
      this.#send({ type: 'ping', seq: ++this.#pingSeq });
    }, heartbeat.intervalMs);
    this.#heartbeat.unref();
  }

  /** Forks the worker and resolves once its model is loaded; rejects on load failure or timeout. */
  static async start(options: WorkerClientOptions): Promise<WorkerClient> {
    const child = fork(options.modulePath, [], {
      execArgv: [...options.execArgv],
      serialization: 'json',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, FLINT_WORKER_INDEX: String(options.index) },
    });
    const logger = options.logger.child({ workerId: options.index });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), options.startTimeoutMs);
    try {
      child.send({ type: 'init', version: IPC_VERSION, settings: options.settings, workerIndex: options.index } satisfies ParentMessage);
      const ready = await waitForReady(child, controller.signal, logger);
      return new WorkerClient(child, options.index, ready, logger, { intervalMs: options.heartbeatIntervalMs, timeoutMs: options.heartbeatTimeoutMs }, options.routingName);
    } catch (err) {
      child.kill('SIGKILL');
      const reason = controller.signal.aborted ? `did not load within ${options.startTimeoutMs} ms` : (err as Error).message;
      throw new FlintError('FLINT_ERR_MODEL_LOAD', { details: { detail: reason }, cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Process id, for diagnostics and fault tests. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  get isAlive(): boolean {
    return this.#exitReason === undefined;
  }

  /** Registers a callback for saves of idle slots' prefixes (with the bytes now held). */
  onSavedPrefixBytes(handler: (bytes: number) => void): void {
    this.#savedHandlers.push(handler);
  }

  /** Registers a callback for reports of the disk prompt cache; the first one also gets the report from start-up. */
  onDiskCacheReport(handler: (report: DiskCacheReport) => void): void {
    this.#diskHandlers.push(handler);
    if (this.#startDiskReport) handler(this.#startDiskReport);
    this.#startDiskReport = undefined;
  }

  /** Registers a callback for the process ending (crash or dispose). */
  onExit(handler: (reason: string) => void): void {
    this.#exitHandlers.push(handler);
  }

  /**
   * Runs one generation on `slot`. Aborting `signal` sends a cancel; the stream still ends
   * with the worker's own `done` (finish reason `cancelled`), so the caller knows the slot is free.
   */
  run(id: string, slot: number, request: GenerateRequest, signal: AbortSignal, options: RunOptions): WorkerRun {
    if (this.#exitReason !== undefined) {
      throw new FlintError('FLINT_ERR_WORKER_CRASHED', { details: { detail: this.#exitReason } });
    }
    const onAbort = () => this.#send({ type: 'cancel', id });
    let settle!: () => void;
    // The run is over when the worker says so, whether or not anybody reads its events.
    const finished = new Promise<void>((resolve) => (settle = resolve)).finally(() => {
      signal.removeEventListener('abort', onAbort);
      this.#inFlight.delete(id);
    });
    const stream: Stream = { queue: new AsyncQueue<WorkerEvent>(), settle, buffered: 0, limit: options.maxBufferedBytes, isOverflowed: false, onOverflow: options.onOverflow };
    this.#inFlight.set(id, stream);
    signal.addEventListener('abort', onAbort, { once: true });
    const message = this.#toGenerateMessage(id, slot, request);
    this.#send(message);
    if (signal.aborted) onAbort();
    const events = (async function* () {
      for await (const event of stream.queue) {
        if (event.type === 'delta' || event.type === 'reasoning') stream.buffered -= event.text.length;
        yield event;
      }
    })();
    const input = message.type === 'generate' ? message.request.input : undefined;
    const messages = input?.type === 'chat' ? { sent: input.messages.length, kept: message.type === 'generate' ? (message.baseMessages ?? 0) : 0 } : undefined;
    return { events, finished, messages };
  }

  /**
   * A chat request that repeats the messages last sent to this slot carries only the messages
   * after them: a warm turn sends what is new, not the conversation.
   */
  #toGenerateMessage(id: string, slot: number, request: GenerateRequest): Extract<ParentMessage, { type: 'generate' }> {
    const input = request.input;
    if (input.type !== 'chat') {
      this.#sentMessages[slot] = undefined;
      return { type: 'generate', id, slot, request };
    }
    const previous = this.#sentMessages[slot];
    this.#sentMessages[slot] = input.messages;
    let base = 0;
    if (previous) {
      const n = Math.min(previous.length, input.messages.length);
      while (base < n && sameMessage(previous[base], input.messages[base])) base++;
    }
    if (base === 0) return { type: 'generate', id, slot, request };
    return { type: 'generate', id, slot, request: { ...request, input: { type: 'chat', messages: input.messages.slice(base) } }, baseMessages: base };
  }

  /** Asks the worker to exit; kills it if it has not after `timeoutMs`. Idempotent. */
  async dispose(timeoutMs = 5_000): Promise<void> {
    if (this.#isDisposed) return;
    this.#isDisposed = true;
    if (this.#exitReason !== undefined) return;
    const exited = once(this.#child, 'exit');
    this.#send({ type: 'shutdown' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #send(message: ParentMessage): void {
    if (this.#exitReason !== undefined || !this.#child.connected) return;
    this.#child.send(message, (err) => {
      if (err) this.#logger.debug({ err }, 'ipc send failed');
    });
  }

  #onMessage(message: WorkerMessage): void {
    switch (message.type) {
      case 'started':
      case 'progress':
      case 'tool_call':
        this.#inFlight.get(message.id)?.queue.push(message);
        break;
      case 'delta':
      case 'reasoning':
        this.#onText(message);
        break;
      case 'deltas':
        for (const [id, kind, text, tokens] of message.items) this.#onText({ type: kind === 0 ? 'delta' : 'reasoning', id, text, tokens });
        break;
      case 'done': {
        const stream = this.#inFlight.get(message.id);
        stream?.queue.push(message);
        stream?.queue.close();
        stream?.settle();
        break;
      }
      case 'failed': {
        const { failure } = message;
        const code = isErrorCode(failure.code) ? failure.code : 'FLINT_ERR_INTERNAL';
        if (code === 'FLINT_ERR_INTERNAL') this.#logger.error({ reqId: message.id, detail: failure.message }, 'generation failed in worker');
        const stream = this.#inFlight.get(message.id);
        stream?.queue.fail(new FlintError(code, { param: failure.param, details: failure.details }));
        stream?.settle();
        break;
      }
      case 'fatal':
        this.#logger.error({ detail: message.message }, 'worker reported a fatal error');
        break;
      case 'pong':
        this.#lastPongAt = performance.now();
        break;
      case 'saved':
        for (const handler of this.#savedHandlers) handler(message.savedPrefixBytes);
        break;
      case 'disk_cache':
        for (const handler of this.#diskHandlers) handler(message.report);
        break;
      case 'log':
        logFromWorker(this.#logger, message);
        break;
      case 'ready':
        break;
    }
  }

  #onText(message: Extract<WorkerEvent, { type: 'delta' | 'reasoning' }>): void {
    const stream = this.#inFlight.get(message.id);
    if (!stream) return;
    stream.queue.push(message);
    stream.buffered += message.text.length;
    if (stream.buffered > stream.limit && !stream.isOverflowed) {
      // The consumer is not reading: stop generating for it rather than buffer without bound.
      stream.isOverflowed = true;
      stream.onOverflow();
      this.#send({ type: 'cancel', id: message.id });
    }
  }

  #onExit(reason: string): void {
    clearInterval(this.#heartbeat);
    this.#exitReason = reason;
    removeScratch(this.#child.pid);
    for (const { queue, settle } of this.#inFlight.values()) {
      queue.fail(new FlintError('FLINT_ERR_WORKER_CRASHED', { details: { detail: reason } }));
      settle();
    }
    this.#inFlight.clear();
    for (const handler of this.#exitHandlers) handler(reason);
  }
}

/** A worker that was killed cannot clean up its saved-prefix files (`flint-w<pid>-*`); do it for it. */
function removeScratch(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const base of ['/dev/shm', tmpdir()]) {
    try {
      for (const name of readdirSync(base)) if (name.startsWith(`flint-w${pid}-`)) rmSync(path.join(base, name), { recursive: true, force: true });
    } catch {
      // the folder does not exist here: nothing to clean
    }
  }
}

/** A worker's line for the log, at its level, with its details. */
function logFromWorker(logger: Logger, message: Extract<WorkerMessage, { type: 'log' }>): void {
  logger[message.level]({ ...message.details }, message.message);
}

async function waitForReady(child: ChildProcess, signal: AbortSignal, logger: Logger): Promise<Extract<WorkerMessage, { type: 'ready' }>> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      signal.removeEventListener('abort', onAbort);
    };
    const onMessage = (message: WorkerMessage) => {
      if (message.type === 'ready') {
        cleanup();
        if (message.version !== IPC_VERSION) reject(new Error(`worker speaks ipc v${message.version}, expected v${IPC_VERSION}`));
        else resolve(message);
      } else if (message.type === 'fatal') {
        cleanup();
        reject(new Error(message.message));
      } else if (message.type === 'log') logFromWorker(logger, message);
    };
    const onExit = (code: number | null, sig: string | null) => {
      cleanup();
      reject(new Error(`worker exited during start-up (${sig ?? `code ${code}`})`));
    };
    const onAbort = () => {
      cleanup();
      reject(new Error('start-up timed out'));
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

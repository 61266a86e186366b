import type { Logger } from '../core/Logger.js';
import type { WorkerModelFacts, WorkerSettings } from '../ipc/messages.js';
import { WorkerClient } from './WorkerClient.js';
import { RestartBackoff } from './RestartBackoff.js';

/** Pool settings: how many workers and how to start each. */
export interface WorkerPoolOptions {
  readonly workers: number;
  readonly modulePath: string;
  readonly execArgv: readonly string[];
  readonly settings: WorkerSettings;
  readonly startTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly logger: Logger;
  /** Longest pause between restarts of a crashing worker. */
  readonly maxRestartDelayMs?: number;
}

/** Lifecycle hooks the scheduler and metrics subscribe to. */
export interface WorkerPoolEvents {
  onWorkerUp?(worker: WorkerClient): void;
  onWorkerDown?(index: number, reason: string): void;
  onRestart?(index: number): void;
}

/**
 * Starts and supervises the worker processes. A worker that dies is restarted with
 * exponential backoff (capped); its requests were already failed by its WorkerClient.
 */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #events: WorkerPoolEvents;
  readonly #workers: Array<WorkerClient | undefined>;
  readonly #restarts: RestartBackoff;
  #facts: WorkerModelFacts | undefined;
  #isDisposed = false;

  constructor(options: WorkerPoolOptions, events: WorkerPoolEvents = {}) {
    this.#options = options;
    this.#events = events;
    this.#workers = new Array(options.workers).fill(undefined);
    this.#restarts = new RestartBackoff(options.workers, { maxDelayMs: options.maxRestartDelayMs, logger: options.logger, kind: 'worker' });
  }

  /** Starts every worker; rejects if the first start of any worker fails (e.g. a bad model file). */
  async start(): Promise<void> {
    await Promise.all(this.#workers.map((_, i) => this.#startWorker(i)));
  }

  /** Model facts reported by the first worker that loaded. */
  get facts(): WorkerModelFacts | undefined {
    return this.#facts;
  }

  /** Workers that are up right now. */
  get liveWorkers(): WorkerClient[] {
    return this.#workers.filter((w): w is WorkerClient => w !== undefined && w.isAlive);
  }

  async #startWorker(index: number): Promise<void> {
    const worker = await WorkerClient.start({
      modulePath: this.#options.modulePath,
      execArgv: this.#options.execArgv,
      settings: this.#options.settings,
      index,
      startTimeoutMs: this.#options.startTimeoutMs,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.#options.heartbeatTimeoutMs,
      logger: this.#options.logger,
    });
    if (this.#isDisposed) {
      await worker.dispose();
      return;
    }
    this.#facts ??= worker.facts;
    this.#workers[index] = worker;
    const upAt = Date.now();
    worker.onExit((reason) => this.#onWorkerExit(index, worker, reason, upAt));
    this.#options.logger.info({ workerId: index, pid: worker.pid, threads: worker.facts.threads, batchThreads: worker.facts.batchThreads }, 'worker up');
    this.#events.onWorkerUp?.(worker);
  }

  #onWorkerExit(index: number, worker: WorkerClient, reason: string, upAt: number): void {
    if (this.#workers[index] === worker) this.#workers[index] = undefined;
    this.#events.onWorkerDown?.(index, reason);
    if (this.#isDisposed) return;
    this.#restarts.schedule(index, upAt, reason, () => this.#startWorker(index), () => this.#events.onRestart?.(index));
  }

  /** Stops every worker (graceful, then SIGKILL) and cancels pending restarts. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#isDisposed) return;
    this.#isDisposed = true;
    const restarts = this.#restarts.stop();
    await Promise.all(this.#workers.map((w) => w?.dispose()));
    await restarts;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

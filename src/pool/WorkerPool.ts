import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../core/Logger.js';
import type { WorkerModelFacts, WorkerSettings } from '../ipc/messages.js';
import { WorkerClient } from './WorkerClient.js';

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
  readonly #restarts: number[];
  readonly #pending = new Set<Promise<unknown>>();
  readonly #stopping = new AbortController();
  #facts: WorkerModelFacts | undefined;
  #isDisposed = false;

  constructor(options: WorkerPoolOptions, events: WorkerPoolEvents = {}) {
    this.#options = options;
    this.#events = events;
    this.#workers = new Array(options.workers).fill(undefined);
    this.#restarts = new Array(options.workers).fill(0);
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
    // A worker that stayed up a minute is healthy again: restart the backoff from the bottom.
    if (Date.now() - upAt > 60_000) this.#restarts[index] = 0;
    const attempt = this.#restarts[index]++;
    const delayMs = Math.min(250 * 2 ** attempt, this.#options.maxRestartDelayMs ?? 30_000);
    this.#options.logger.warn({ workerId: index, reason, restartInMs: delayMs }, 'worker down; restarting');
    const restart = this.#restart(index, delayMs);
    this.#pending.add(restart);
    void restart.finally(() => this.#pending.delete(restart));
  }

  async #restart(index: number, delayMs: number): Promise<void> {
    for (;;) {
      try {
        await delay(delayMs, undefined, { signal: this.#stopping.signal });
      } catch {
        return; // disposed while waiting
      }
      this.#events.onRestart?.(index);
      try {
        await this.#startWorker(index);
        return;
      } catch (err) {
        delayMs = Math.min(250 * 2 ** this.#restarts[index]++, this.#options.maxRestartDelayMs ?? 30_000);
        this.#options.logger.warn({ workerId: index, err: (err as Error).message, restartInMs: delayMs }, 'worker restart failed');
      }
    }
  }

  /** Stops every worker (graceful, then SIGKILL) and cancels pending restarts. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#isDisposed) return;
    this.#isDisposed = true;
    this.#stopping.abort();
    await Promise.all(this.#workers.map((w) => w?.dispose()));
    await Promise.allSettled([...this.#pending]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

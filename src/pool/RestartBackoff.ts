import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../core/Logger.js';

/**
 * Restarts of a pool's workers after they die: capped exponential backoff per worker (250 ms,
 * doubling, at most `maxDelayMs`), back to the bottom for a worker that stayed up a minute, and
 * retried until a start succeeds or the pool stops. Shared by node-llama-cpp and llama-server pools.
 */
export class RestartBackoff {
  readonly #attempts: number[];
  readonly #maxDelayMs: number;
  readonly #logger: Logger;
  readonly #kind: string;
  readonly #pending = new Set<Promise<void>>();
  readonly #stopping = new AbortController();

  constructor(workers: number, options: { maxDelayMs?: number; logger: Logger; kind: string }) {
    this.#attempts = new Array(workers).fill(0);
    this.#maxDelayMs = options.maxDelayMs ?? 30_000;
    this.#logger = options.logger;
    this.#kind = options.kind;
  }

  get isStopped(): boolean {
    return this.#stopping.signal.aborted;
  }

  /** Worker `index` (up since `upAt`) died for `reason`: `start` runs after the backoff, again until it succeeds. */
  schedule(index: number, upAt: number, reason: string, start: () => Promise<void>, onRestart?: () => void, detail: Record<string, unknown> = {}): void {
    if (this.isStopped) return;
    if (Date.now() - upAt > 60_000) this.#attempts[index] = 0;
    const delayMs = this.#nextDelay(index);
    this.#logger.warn({ workerId: index, reason, restartInMs: delayMs, ...detail }, `${this.#kind} down; restarting`);
    const restart = this.#restart(index, delayMs, start, onRestart);
    this.#pending.add(restart);
    void restart.finally(() => this.#pending.delete(restart));
  }

  /** Cancels pending restarts and waits for any that is starting a worker now. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await Promise.allSettled([...this.#pending]);
  }

  #nextDelay(index: number): number {
    return Math.min(250 * 2 ** this.#attempts[index]++, this.#maxDelayMs);
  }

  async #restart(index: number, delayMs: number, start: () => Promise<void>, onRestart?: () => void): Promise<void> {
    for (;;) {
      try {
        await delay(delayMs, undefined, { signal: this.#stopping.signal });
      } catch {
        return; // stopped while waiting
      }
      onRestart?.();
      try {
        await start();
        return;
      } catch (err) {
        delayMs = this.#nextDelay(index);
        this.#logger.warn({ workerId: index, err: (err as Error).message, restartInMs: delayMs }, `${this.#kind} restart failed`);
      }
    }
  }
}

/**
 * Keeps the slots of one context decoding in step, so each llama.cpp decode carries one token
 * of every generating slot instead of one slot's.
 *
 * node-llama-cpp batches the evaluations that are queued when it dispatches, and dispatches
 * again at once when more were queued during a decode. Slots that started at different times
 * therefore stay out of phase for good: each decode holds only the slots that queued while the
 * previous one ran, and with 8 streams most decodes carry a single token (the aggregate rate of
 * 8 streams fell to that of one). A slot that has its token waits here until every other
 * generating slot has its own (at most the decode in flight), then all queue their next token
 * together; in phase, the last to arrive releases the others at once and nobody waits.
 */
export class DecodeBarrier {
  /** Longest wait for the others, in case a slot stalls outside decoding. */
  readonly #maxWaitMs: number;
  readonly #members = new Set<object>();
  readonly #arrived = new Set<object>();
  #waiters: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(maxWaitMs = 5) {
    this.#maxWaitMs = maxWaitMs;
  }

  /** A slot starts decoding; `leave` when it stops. */
  join(member: object): void {
    this.#members.add(member);
  }

  leave(member: object): void {
    this.#members.delete(member);
    this.#arrived.delete(member);
    if (this.#waiters.length > 0 && this.#isComplete()) this.#release();
  }

  /** The slot has its token: resolves when it may queue the next one; undefined when it may at once. */
  arrive(member: object): Promise<void> | undefined {
    if (this.#members.size <= 1) return undefined;
    this.#arrived.add(member);
    if (this.#isComplete()) {
      this.#release();
      return undefined;
    }
    this.#timer ??= setTimeout(() => this.#release(), this.#maxWaitMs);
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #isComplete(): boolean {
    for (const member of this.#members) if (!this.#arrived.has(member)) return false;
    return true;
  }

  #release(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#arrived.clear();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * A single-consumer queue that is also an async iterator: producers `push`, end it with
 * `close` or `fail`, and the consumer iterates. Bounded by whoever produces into it (one
 * generation's events are bounded by its token cap).
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #head = 0;
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  #isClosed = false;
  #error: unknown;
  #hasError = false;

  /** Number of items not yet consumed. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    if (this.#isClosed) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve({ value: item, done: false });
    } else this.#items.push(item);
  }

  /** Ends the stream after the queued items. */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve({ value: undefined, done: true });
  }

  /** Ends the stream with an error, thrown after the queued items. */
  fail(error: unknown): void {
    if (this.#isClosed) return;
    this.#error = error;
    this.#hasError = true;
    this.#isClosed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#hasError) return Promise.reject(this.#error);
    if (this.#isClosed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  async return(): Promise<IteratorResult<T>> {
    this.close();
    this.#items = [];
    this.#head = 0;
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

import type { GenerationEvent } from './types.js';

/** What {@link TimedEvents.next} returns when the wait ran out before the next event. */
export const timedOut = Symbol('timedOut');

/**
 * A generation's event iterator whose waits can time out without losing an event: a `next`
 * that times out leaves its read pending, and the following `next` picks it up. Transports use
 * it to send keep-alive progress while a request is queued or in prefill, and to decide how
 * long to hold the HTTP status back waiting for admission.
 */
export class TimedEvents {
  readonly #events: AsyncIterator<GenerationEvent>;
  #pending: Promise<IteratorResult<GenerationEvent>> | undefined;

  constructor(events: AsyncIterable<GenerationEvent>) {
    this.#events = events[Symbol.asyncIterator]();
  }

  /** The next event, or `timedOut` after `timeoutMs` (undefined waits as long as it takes). Failures are thrown. */
  async next(timeoutMs?: number): Promise<IteratorResult<GenerationEvent> | typeof timedOut> {
    const read = (this.#pending ??= this.#events.next());
    if (timeoutMs === undefined) return this.#take(await read);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof timedOut>((resolve) => {
      timer = setTimeout(() => resolve(timedOut), Math.max(0, timeoutMs));
    });
    try {
      const result = await Promise.race([read, timeout]);
      return result === timedOut ? timedOut : this.#take(result);
    } finally {
      clearTimeout(timer);
    }
  }

  #take(result: IteratorResult<GenerationEvent>): IteratorResult<GenerationEvent> {
    this.#pending = undefined;
    return result;
  }
}

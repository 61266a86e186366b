import { once } from 'node:events';
import type { FastifyReply } from 'fastify';

/** Writes SSE frames to a hijacked reply, waiting for `drain` so a slow reader never buffers without bound. */
export class SseWriter {
  readonly #reply: FastifyReply;
  #isOpen = true;

  constructor(reply: FastifyReply, headers: Record<string, string> = {}) {
    this.#reply = reply;
    reply.hijack();
    const raw = reply.raw;
    raw.socket?.setNoDelay(true);
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    raw.once('close', () => {
      this.#isOpen = false;
    });
  }

  /** False once the client has gone; writes after that are dropped. */
  get isOpen(): boolean {
    return this.#isOpen && !this.#reply.raw.destroyed;
  }

  /** Writes one frame; resolves when the socket can take more. */
  async write(frame: string): Promise<void> {
    if (!this.isOpen) return;
    const raw = this.#reply.raw;
    if (raw.write(frame)) return;
    const settled = new AbortController();
    try {
      await Promise.race([once(raw, 'drain', { signal: settled.signal }), once(raw, 'close', { signal: settled.signal })]);
    } finally {
      settled.abort();
    }
  }

  end(): void {
    if (this.isOpen) this.#reply.raw.end();
  }
}

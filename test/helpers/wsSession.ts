import assert from 'node:assert/strict';
import { ResponsesWS } from 'openai/resources/responses/ws';
import type OpenAI from 'openai';

/** A server event as the test sees it. */
export type ServerEvent = { type: string; [key: string]: unknown };

/**
 * One Responses WebSocket opened with the official client, with a queue of everything the
 * server sent (error events included), so a test can await exactly the events it expects.
 */
export class WsSession {
  readonly ws: ResponsesWS;
  readonly #events: ServerEvent[] = [];
  #waiter: (() => void) | undefined;
  closed: { code: number; reason: string } | undefined;

  constructor(client: OpenAI) {
    this.ws = new ResponsesWS(client);
    // Server `error` events reach the 'error' listener (as a WebSocketError carrying the event).
    this.ws.on('event', (event) => {
      if ((event as { type?: string }).type !== 'error') this.#push(event as unknown as ServerEvent);
    });
    this.ws.on('error', (err) => this.#push({ type: 'error', ...(((err as { error?: object }).error ?? { message: String(err) }) as object) }));
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason };
      this.#waiter?.();
    });
  }

  send(event: Record<string, unknown>): void {
    this.ws.send(event as never);
  }

  /** The next event (waits up to 30 s). */
  async next(): Promise<ServerEvent> {
    const deadline = Date.now() + 30_000;
    while (this.#events.length === 0) {
      if (this.closed) throw new Error(`socket closed (${this.closed.code})`);
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, Math.max(0, deadline - Date.now())).unref();
      });
      if (Date.now() >= deadline && this.#events.length === 0) throw new Error('no event within 30 s');
    }
    return this.#events.shift()!;
  }

  /** Events up to and including a terminal event or an `error` event. */
  async untilTerminal(): Promise<ServerEvent[]> {
    const events: ServerEvent[] = [];
    for (;;) {
      const event = await this.next();
      events.push(event);
      if (['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(event.type)) return events;
    }
  }

  /** Sends one `response.create` and returns its events. */
  async turn(body: Record<string, unknown>): Promise<ServerEvent[]> {
    this.send({ type: 'response.create', ...body });
    return this.untilTerminal();
  }

  close(): void {
    this.ws.close({ code: 1000, reason: 'done' });
  }

  #push(event: ServerEvent): void {
    this.#events.push(event);
    this.#waiter?.();
  }
}

/** The response object of a terminal event. */
export function responseOf(events: ServerEvent[]): { id: string; status: string; output: unknown[]; usage: { input_tokens: number; output_tokens: number; input_tokens_details: { cached_tokens: number } } } {
  return (events.at(-1) as unknown as { response: ReturnType<typeof responseOf> }).response;
}

/**
 * `turns` turns on one socket, each continuing the last by `previous_response_id` with one new
 * user message; asserts that each finished and that every turn after the first found at least
 * 90% of the previous prompt in the cache (turn N evaluates only what is new).
 */
export async function assertWarmChain(session: WsSession, model: string, turns: number, extra: Record<string, unknown> = {}): Promise<void> {
  let previous: ReturnType<typeof responseOf> | undefined;
  for (let turn = 1; turn <= turns; turn++) {
    const response = responseOf(
      await session.turn({
        model,
        store: false,
        instructions: 'You are a terse coding assistant.',
        previous_response_id: previous?.id,
        input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: `Turn ${turn}: rename variable number ${turn} in the file.` }] }],
        max_output_tokens: 6,
        temperature: 0,
        ...extra,
      }),
    );
    assert.ok(['completed', 'incomplete'].includes(response.status), `turn ${turn}: ${response.status}`);
    if (previous) {
      const cached = response.usage.input_tokens_details.cached_tokens;
      assert.ok(cached >= previous.usage.input_tokens * 0.9, `turn ${turn}: cached ${cached} of the previous prompt's ${previous.usage.input_tokens}`);
    }
    previous = response;
  }
}

import WebSocket from 'ws';
import type { Entry, Ledger, Outcome } from './Ledger.js';

/** A chat message as Chat Completions takes it. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** What a streamed chat turn returned, besides its ledger entry. */
export interface ChatResult {
  readonly entry: Entry;
  readonly text: string;
  /** Seconds the client should wait before sending a refused request again. */
  readonly retryAfterS?: number;
  /** For an answer other than 200: its status, Retry-After and content type as sent, and its whole body. */
  readonly answer?: { readonly status: number; readonly retryAfter: string | null; readonly contentType: string | null; readonly body: string };
}

/** Options of one HTTP turn. */
export interface ChatTurnOptions {
  readonly ledger: Ledger;
  readonly session: string;
  readonly key: string;
  readonly messages: readonly ChatMessage[];
  readonly maxTokens: number;
  /** The request's deadline; a request still open then is `failed` (the bound every scenario checks). */
  readonly deadlineMs: number;
  /** Called once the first delta arrived (a scenario then knows the stream is running). */
  readonly onFirstDelta?: () => void;
}

/**
 * One streamed Chat Completions request through the balancer, with the session header and a
 * request id, classified into the ledger (see `Outcome`). Never throws: every end is an entry.
 */
export async function chatTurn(base: string, options: ChatTurnOptions): Promise<ChatResult> {
  const id = options.ledger.nextId(options.session);
  const startMs = performance.now();
  const record = (outcome: Outcome, rest: Partial<Entry> = {}) =>
    options.ledger.add({ id, transport: 'http', session: options.session, replica: undefined, outcome, startMs, endMs: performance.now(), ...rest });
  const deadline = AbortSignal.timeout(options.deadlineMs);
  let res: Response;
  try {
    res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${options.key}`, 'x-request-id': id, 'x-flint-session': options.session },
      body: JSON.stringify({ messages: options.messages, max_tokens: options.maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
      signal: deadline,
    });
  } catch (err) {
    return { entry: record(deadline.aborted ? 'failed' : 'cut', { detail: `no answer: ${describe(err)}` }), text: '' };
  }
  const replica = res.headers.get('x-flint-replica') ?? undefined;
  if (res.status !== 200) {
    const body = await res.text().catch(() => '');
    const retryAfter = Number(res.headers.get('retry-after'));
    const refused = res.status === 503 && retryAfter >= 1 && replica !== undefined;
    const answer = { status: res.status, retryAfter: res.headers.get('retry-after'), contentType: res.headers.get('content-type'), body };
    return { entry: record(refused ? 'refused' : 'failed', { replica, status: res.status, detail: body.slice(0, 200) }), text: '', retryAfterS: refused ? retryAfter : undefined, answer };
  }
  let text = '';
  let usage: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | undefined;
  let errorCode: string | undefined;
  let isDone = false;
  let sawDelta = false;
  let finishReason: string | null | undefined;
  try {
    for await (const data of sseData(res.body!)) {
      if (data === '[DONE]') {
        isDone = true;
        continue;
      }
      const event = JSON.parse(data) as { error?: { code?: string }; choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>; usage?: typeof usage };
      if (event.error) errorCode = event.error.code ?? 'error';
      if (event.choices?.[0]?.finish_reason) finishReason = event.choices[0].finish_reason;
      const delta = event.choices?.[0]?.delta?.content;
      if (delta) {
        text += delta;
        if (!sawDelta) options.onFirstDelta?.();
        sawDelta = true;
      }
      if (event.usage) usage = event.usage;
    }
  } catch (err) {
    return { entry: record(deadline.aborted ? 'failed' : 'cut', { replica, status: 200, detail: `stream broke: ${describe(err)}` }), text };
  }
  if (errorCode !== undefined) return { entry: record('terminal', { replica, status: 200, detail: errorCode }), text };
  if (!isDone) return { entry: record('cut', { replica, status: 200, detail: 'stream ended without [DONE]' }), text };
  // A stream the server stopped (shutdown, cancel) ends with [DONE] but no finish reason: it knows it was cut.
  if (finishReason === undefined) return { entry: record('terminal', { replica, status: 200, detail: 'no finish_reason: stopped by the server' }), text };
  return { entry: record('ok', { replica, status: 200, promptTokens: usage?.prompt_tokens, cachedTokens: usage?.prompt_tokens_details?.cached_tokens }), text };
}

/** A Responses response object, as far as the scenarios read it. */
export interface ResponseObject {
  readonly id: string;
  readonly status: string;
  readonly output: Array<{ type: string; content?: Array<{ type: string; text?: string }> }>;
  readonly usage?: { input_tokens: number; input_tokens_details?: { cached_tokens?: number } };
  readonly incomplete_details?: { reason?: string } | null;
}

type ServerEvent = { type: string; response?: ResponseObject; error?: { code?: string }; status?: number };

/**
 * One Responses WebSocket through the balancer, named by the session header. It notes the node
 * from the handshake, every server event, and how and when the socket closed.
 */
export class WsClient {
  readonly session: string;
  readonly replica: string | undefined;
  readonly openedAtMs: number;
  /** The `websocket_connection_limit_reached` event, if the server sent one, and when. */
  limitReachedAtMs: number | undefined;
  closed: { code: number; atMs: number } | undefined;
  readonly #ws: WebSocket;
  readonly #events: ServerEvent[] = [];
  #wake: (() => void) | undefined;

  private constructor(ws: WebSocket, session: string, replica: string | undefined) {
    this.#ws = ws;
    this.session = session;
    this.replica = replica;
    this.openedAtMs = performance.now();
    ws.on('message', (data) => {
      const event = JSON.parse(String(data)) as ServerEvent;
      if (event.type === 'error' && event.error?.code === 'websocket_connection_limit_reached') this.limitReachedAtMs ??= performance.now();
      this.#events.push(event);
      this.#wake?.();
    });
    ws.on('close', (code) => {
      this.closed = { code, atMs: performance.now() };
      this.#wake?.();
    });
    ws.on('error', () => undefined); // a reset is seen as the close that follows
  }

  /** Opens a socket; rejects if the handshake fails within `timeoutMs`. */
  static async open(base: string, options: { session: string; key: string; timeoutMs: number }): Promise<WsClient> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/responses`, {
      headers: { authorization: `Bearer ${options.key}`, 'x-flint-session': options.session },
      handshakeTimeout: options.timeoutMs,
    });
    const replica = await new Promise<string | undefined>((resolve, reject) => {
      let seen: string | undefined;
      ws.once('upgrade', (res) => (seen = res.headers['x-flint-replica'] as string | undefined));
      ws.once('open', () => resolve(seen));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
    });
    return new WsClient(ws, options.session, replica);
  }

  /** Whether the socket can take another turn. */
  get isOpen(): boolean {
    return this.closed === undefined && this.limitReachedAtMs === undefined && this.#ws.readyState === WebSocket.OPEN;
  }

  /**
   * One `response.create` (store: false), classified into the ledger like `chatTurn`: an `error`
   * event ends the turn (`refused` when it is a 503 before anything else, else `terminal`).
   */
  async turn(options: { ledger: Ledger; input: unknown[]; previousResponseId?: string; maxTokens: number; deadlineMs: number; onFirstDelta?: () => void }): Promise<{ entry: Entry; response?: ResponseObject }> {
    const id = options.ledger.nextId(this.session);
    const startMs = performance.now();
    const record = (outcome: Outcome, rest: Partial<Entry> = {}) =>
      options.ledger.add({ id, transport: 'ws', session: this.session, replica: this.replica, outcome, startMs, endMs: performance.now(), ...rest });
    this.#events.length = 0;
    if (this.#ws.readyState !== WebSocket.OPEN) return { entry: record('cut', { detail: 'socket not open' }) };
    this.#ws.send(
      JSON.stringify({ type: 'response.create', store: false, input: options.input, previous_response_id: options.previousResponseId, max_output_tokens: options.maxTokens, temperature: 0, metadata: { request_id: id } }),
    );
    const deadlineAt = startMs + options.deadlineMs;
    let sawEvent = false;
    let sawDelta = false;
    for (;;) {
      const event = this.#events.shift();
      if (event) {
        if (event.type === 'error') {
          // Before any event of the turn, the drain's websocket_connection_limit_reached answers
          // it too: the frame crossed the server's go-away, nothing ran, send it on a new socket.
          const refused = !sawEvent && event.status === 503;
          return { entry: record(refused ? 'refused' : 'terminal', { status: event.status, detail: event.error?.code }) };
        }
        if (event.type === 'response.output_text.delta' && !sawDelta) {
          sawDelta = true;
          options.onFirstDelta?.();
        }
        sawEvent = true;
        // A turn cut at max_output_tokens is whole for this client: `incomplete` by the length limit.
        const isWhole = event.type === 'response.completed' || (event.type === 'response.incomplete' && event.response?.incomplete_details?.reason === 'max_output_tokens');
        if (isWhole) {
          const usage = event.response!.usage;
          return { entry: record('ok', { promptTokens: usage?.input_tokens, cachedTokens: usage?.input_tokens_details?.cached_tokens }), response: event.response };
        }
        if (event.type === 'response.incomplete' || event.type === 'response.failed') {
          return { entry: record('terminal', { detail: `${event.type} ${event.response?.incomplete_details?.reason ?? ''}`.trim() }), response: event.response };
        }
        continue;
      }
      if (this.closed) return { entry: record('cut', { detail: `socket closed ${this.closed.code} mid-turn` }) };
      const left = deadlineAt - performance.now();
      if (left <= 0) return { entry: record('failed', { detail: 'no terminal event before the deadline' }) };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Resolves once the socket is closed (or after `timeoutMs`). */
  async waitClosed(timeoutMs: number): Promise<void> {
    const deadlineAt = performance.now() + timeoutMs;
    while (!this.closed && performance.now() < deadlineAt) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineAt - performance.now());
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close(1000, 'done');
  }

  /** Ends the socket at once, whatever its state. */
  terminate(): void {
    this.#ws.terminate();
  }
}

/** The text of a Responses output. */
export function outputText(response: ResponseObject | undefined): string {
  return (response?.output ?? []).flatMap((item) => item.content ?? []).map((c) => c.text ?? '').join('');
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}

/** Options of one Responses request over HTTP (`responsesTurn`). */
export interface ResponsesTurnOptions {
  readonly ledger: Ledger;
  /** The ledger's session of the request (a chain's name); sent only with `sessionHeader`. */
  readonly session: string;
  readonly key: string;
  /** Sends `x-flint-session: <session>`, the affinity key; without it the request names no session. */
  readonly sessionHeader: boolean;
  readonly input: readonly unknown[];
  readonly previousResponseId?: string;
  readonly maxTokens: number;
  /** SSE (`stream: true`) or one JSON answer (`stream: false`). */
  readonly stream: boolean;
  readonly deadlineMs: number;
}

/** What a Responses request returned, besides its ledger entry. */
export interface ResponsesTurnResult {
  readonly entry: Entry;
  readonly response?: ResponseObject;
  /** For an answer other than 200: its status, the error's code (`previous_response_not_found`, ...) and its whole body. */
  readonly answer?: { readonly status: number; readonly code: string | undefined; readonly contentType: string | null; readonly body: string };
}

/**
 * One `POST /v1/responses` (store defaults to true, so the node keeps the response for a later
 * `previous_response_id`), with a request id and the node from `x-flint-replica`, classified into
 * the ledger like `chatTurn`: a 200 whose response completed (or stopped at max_output_tokens) is
 * `ok`, with `usage.input_tokens` and its cached tokens; any other status is `failed`, with the
 * error's code as detail. Never throws: every end is an entry.
 */
export async function responsesTurn(base: string, options: ResponsesTurnOptions): Promise<ResponsesTurnResult> {
  const id = options.ledger.nextId(options.session);
  const startMs = performance.now();
  const record = (outcome: Outcome, rest: Partial<Entry> = {}) =>
    options.ledger.add({ id, transport: 'http', session: options.session, replica: undefined, outcome, startMs, endMs: performance.now(), ...rest });
  const deadline = AbortSignal.timeout(options.deadlineMs);
  const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${options.key}`, 'x-request-id': id };
  if (options.sessionHeader) headers['x-flint-session'] = options.session;
  let res: Response;
  try {
    res = await fetch(`${base}/v1/responses`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ input: options.input, previous_response_id: options.previousResponseId, max_output_tokens: options.maxTokens, temperature: 0, stream: options.stream }),
      signal: deadline,
    });
  } catch (err) {
    return { entry: record(deadline.aborted ? 'failed' : 'cut', { detail: `no answer: ${describe(err)}` }) };
  }
  const replica = res.headers.get('x-flint-replica') ?? undefined;
  if (res.status !== 200) {
    const body = await res.text().catch(() => '');
    let code: string | undefined;
    try {
      code = (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? undefined;
    } catch {
      code = undefined;
    }
    const answer = { status: res.status, code, contentType: res.headers.get('content-type'), body };
    return { entry: record('failed', { replica, status: res.status, detail: code ?? body.slice(0, 200) }), answer };
  }
  // A response cut at max_output_tokens is whole for this client: `incomplete` by the length limit.
  const isWhole = (r: ResponseObject | undefined) => r?.status === 'completed' || (r?.status === 'incomplete' && r.incomplete_details?.reason === 'max_output_tokens');
  const ok = (response: ResponseObject) =>
    ({ entry: record('ok', { replica, status: 200, promptTokens: response.usage?.input_tokens, cachedTokens: response.usage?.input_tokens_details?.cached_tokens }), response }) as const;
  if (!options.stream) {
    let response: ResponseObject;
    try {
      response = (await res.json()) as ResponseObject;
    } catch (err) {
      return { entry: record(deadline.aborted ? 'failed' : 'cut', { replica, status: 200, detail: `body broke: ${describe(err)}` }) };
    }
    if (isWhole(response)) return ok(response);
    return { entry: record('terminal', { replica, status: 200, detail: `${response.status} ${response.incomplete_details?.reason ?? ''}`.trim() }), response };
  }
  try {
    for await (const data of sseData(res.body!)) {
      const event = JSON.parse(data) as ServerEvent;
      if (event.type === 'error') return { entry: record('terminal', { replica, status: 200, detail: event.error?.code ?? 'error' }) };
      if (event.type === 'response.completed' || event.type === 'response.incomplete' || event.type === 'response.failed') {
        if (isWhole(event.response)) return ok(event.response!);
        return { entry: record('terminal', { replica, status: 200, detail: `${event.type} ${event.response?.incomplete_details?.reason ?? ''}`.trim() }), response: event.response };
      }
    }
  } catch (err) {
    return { entry: record(deadline.aborted ? 'failed' : 'cut', { replica, status: 200, detail: `stream broke: ${describe(err)}` }) };
  }
  return { entry: record('cut', { replica, status: 200, detail: 'stream ended without a terminal event' }) };
}

/** The `data:` payloads of an SSE body, in order. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline).trimEnd();
      buffered = buffered.slice(newline + 1);
      if (line.startsWith('data: ')) yield line.slice(6);
    }
  }
}

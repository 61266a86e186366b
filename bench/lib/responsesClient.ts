/**
 * Clients for the Responses API: WebSocket mode (`GET /v1/responses` upgraded; one JSON event
 * per message, responses chained with `previous_response_id` on one socket) and HTTP+SSE
 * (`POST /v1/responses`, `stream: true`). Both are probed at run time, so scenarios that use
 * them light up as soon as the endpoints exist.
 */
import { now } from './clock.js';
import { bodyText, parseSse, postStream, request } from './httpStream.js';
import type { StreamTurn, Usage } from './turn.js';
import { openSocket, toWsUrl, whenOpen, wsOpen, type WsSocket } from './ws.js';

export interface ResponsesTurn extends StreamTurn {
  readonly responseId: string | undefined;
  readonly status: string | undefined;
}

interface TimedEvent {
  readonly t: number;
  readonly data: string;
}

interface ResponseEvent {
  type?: string;
  delta?: string;
  message?: string;
  error?: { message?: string };
  response?: {
    id?: string;
    status?: string;
    error?: { message?: string } | null;
    usage?: { input_tokens: number; output_tokens: number; input_tokens_details?: { cached_tokens?: number } } | null;
  };
}

const terminalTypes = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);
const deltaPrefix = '{"type":"response.output_text.delta"';

/** Folds one response's events into a turn; throws on `error` / `response.failed`. */
function toTurn(startedAt: number, events: readonly TimedEvent[], endedAt: number): ResponsesTurn {
  let firstTokenAt: number | undefined;
  const contentTimes: number[] = [];
  const contentLengths: number[] = [];
  let text = '';
  let usage: Usage | undefined;
  let responseId: string | undefined;
  let status: string | undefined;
  for (const { t, data } of events) {
    const event = JSON.parse(data) as ResponseEvent;
    switch (event.type) {
      case 'response.output_text.delta':
        if (event.delta) {
          firstTokenAt ??= t;
          contentTimes.push(t);
          contentLengths.push(event.delta.length);
          text += event.delta;
        }
        break;
      case 'response.function_call_arguments.delta':
        firstTokenAt ??= t;
        break;
      case 'response.created':
        responseId ??= event.response?.id;
        break;
      case 'response.completed':
      case 'response.incomplete': {
        firstTokenAt ??= t;
        responseId = event.response?.id ?? responseId;
        status = event.response?.status;
        const u = event.response?.usage;
        if (u) usage = { promptTokens: u.input_tokens, completionTokens: u.output_tokens, cachedTokens: u.input_tokens_details?.cached_tokens ?? 0 };
        break;
      }
      case 'response.failed':
        throw new Error(`response.failed: ${event.response?.error?.message ?? data.slice(0, 300)}`);
      case 'error':
        throw new Error(`error event: ${event.error?.message ?? event.message ?? data.slice(0, 300)}`);
    }
  }
  return { startedAt, firstTokenAt, contentTimes, contentLengths, text, usage, finishReason: status, endedAt, responseId, status };
}

/** One Responses WebSocket connection; one response at a time (a single lane). */
export class ResponsesSocket {
  readonly #socket: WsSocket;
  #pending: { events: TimedEvent[]; done: (error?: Error) => void } | undefined;
  #closed: Error | undefined;

  private constructor(socket: WsSocket) {
    this.#socket = socket;
    socket.on('message', (data) => {
      const pending = this.#pending;
      if (!pending) return;
      const text = data.toString();
      pending.events.push({ t: now(), data: text });
      // Deltas are the hot path: recognise them by prefix and parse everything only at the end.
      if (text.startsWith(deltaPrefix)) return;
      const type = (JSON.parse(text) as ResponseEvent).type;
      if (type !== undefined && terminalTypes.has(type)) pending.done();
    });
    socket.on('close', (code) => {
      this.#closed = new Error(`socket closed (code ${code})`);
      this.#pending?.done(this.#closed);
    });
    socket.on('error', (err) => {
      this.#closed = err;
      this.#pending?.done(err);
    });
  }

  static async connect(baseUrl: string, timeoutMs: number, headers?: Readonly<Record<string, string>>): Promise<ResponsesSocket> {
    const socket = openSocket(toWsUrl(baseUrl, '/v1/responses'), { handshakeTimeout: timeoutMs, headers });
    await whenOpen(socket, timeoutMs);
    return new ResponsesSocket(socket);
  }

  /** Sends `response.create` and resolves with the turn once a terminal event arrives. */
  create(body: Record<string, unknown>, timeoutMs: number): Promise<ResponsesTurn> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#pending) return Promise.reject(new Error('a response is already in progress on this socket'));
    const payload = JSON.stringify({ type: 'response.create', model: 'bench', store: false, temperature: 0, ...body });
    return new Promise((resolve, reject) => {
      const events: TimedEvent[] = [];
      const timer = setTimeout(() => this.#pending?.done(new Error(`no terminal event within ${timeoutMs} ms`)), timeoutMs);
      let startedAt = 0;
      this.#pending = {
        events,
        done: (error) => {
          clearTimeout(timer);
          this.#pending = undefined;
          if (error) return reject(error);
          try {
            resolve(toTurn(startedAt, events, now()));
          } catch (err) {
            reject(err);
          }
        },
      };
      startedAt = now();
      this.#socket.send(payload, (err) => {
        if (err) this.#pending?.done(err);
      });
    });
  }

  get isOpen(): boolean {
    return this.#socket.readyState === wsOpen && !this.#closed;
  }

  close(): void {
    this.#socket.close();
  }
}

/** `POST /v1/responses` with `stream: true`; the whole input is sent every turn. */
export async function streamResponsesHttp(baseUrl: string, body: Record<string, unknown>, timeoutMs: number): Promise<ResponsesTurn> {
  const payload = JSON.stringify({ model: 'bench', store: false, temperature: 0, stream: true, ...body });
  const response = await postStream(`${baseUrl}/v1/responses`, payload, timeoutMs);
  if (response.status !== 200) throw new Error(`responses: HTTP ${response.status}: ${bodyText(response)}`);
  const events = parseSse(response.chunks).map((f) => ({ t: f.t, data: f.data }));
  return toTurn(response.startedAt, events, response.endedAt);
}

export type Probe = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Whether the WebSocket mode works end to end: upgrade, one tiny response, terminal event. */
export async function probeResponsesSocket(baseUrl: string): Promise<Probe> {
  let socket: ResponsesSocket | undefined;
  try {
    socket = await ResponsesSocket.connect(baseUrl, 5_000);
    await socket.create({ input: [{ type: 'message', role: 'user', content: 'ping' }], max_output_tokens: 1 }, 60_000);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  } finally {
    socket?.close();
  }
}

/** Whether `POST /v1/responses` answers a tiny request. */
export async function probeResponsesHttp(baseUrl: string): Promise<Probe> {
  try {
    const body = JSON.stringify({ model: 'bench', input: 'ping', max_output_tokens: 1, store: false });
    const res = await request(`${baseUrl}/v1/responses`, 'POST', body, 60_000);
    return res.status === 200 ? { ok: true } : { ok: false, reason: `HTTP ${res.status}: ${res.text.slice(0, 200)}` };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * The official `openai` SDK (pinned in scripts/installClients.ts, loaded from .clients/)
 * against a spawned Flint: Responses over HTTP (JSON and SSE) and over the SDK's WebSocket
 * client (`ResponsesWS`), three turns each chained with `previous_response_id`, and a forced
 * function call round trip on both transports.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type OpenAIType from 'openai';
import { startLoggingProxy, summarizeExchanges, type LoggingProxy } from './loggingProxy.js';
import { clientVersion, longInstructions, loadClient, Report, requestDelta, scrapeMetrics, startFlint, withDeadline, type Flint } from './support.js';

type Usage = { input_tokens: number; output_tokens: number; input_tokens_details?: { cached_tokens?: number } };
type ResponseLike = { id: string; status: string; output: Array<{ type: string; [k: string]: any }>; usage?: Usage; error?: unknown };
type ServerEvent = { type: string; [key: string]: any };

const report = new Report('openai');
const turnTimeoutMs = 60_000;
let flint: Flint;
let proxy: LoggingProxy;
let client: OpenAIType;
let ResponsesWS: new (client: OpenAIType, options?: Record<string, unknown>) => any;
let sdkVersion = '';

before(async () => {
  flint = await startFlint({ contextSize: 8192 });
  const sdk = await loadClient<{ default: new (o: Record<string, unknown>) => OpenAIType }>('openai');
  sdkVersion = clientVersion('openai');
  ({ ResponsesWS } = await loadClient('openai/resources/responses/ws'));
  // The SDK talks to Flint through a loopback proxy that records what it sends (see .clients/reports/openai-requests.json).
  proxy = await startLoggingProxy(flint.url);
  client = new sdk.default({ baseURL: `${proxy.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: turnTimeoutMs });
});

after(async () => {
  report.write(proxy ? summarizeExchanges(proxy.exchanges) : undefined);
  await proxy?.close();
  await flint?.stop();
});

const weatherTool = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Current weather for a city.',
  strict: true,
  // An enum keeps the grammar-constrained arguments short: a free string from random weights can run past any token cap.
  parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Tokyo', 'Lima'] } }, required: ['city'], additionalProperties: false },
};

/** A reply that ends by itself on a random-weights model: a grammar-enforced JSON answer. */
const shortJsonAnswer = {
  format: { type: 'json_schema' as const, name: 'answer', strict: true, schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false } },
};

const firstInput = [
  { type: 'message' as const, role: 'developer' as const, content: longInstructions },
  { type: 'message' as const, role: 'user' as const, content: 'Say hi.' },
];

function assertAnswered(response: ResponseLike, label: string): void {
  assert.ok(['completed', 'incomplete'].includes(response.status), `${label}: status ${response.status} ${JSON.stringify(response.error ?? null)}`);
  assert.ok(response.usage && response.usage.output_tokens > 0, `${label}: no output tokens (${JSON.stringify(response.usage)})`);
}

function assertCached(next: ResponseLike, previous: ResponseLike, label: string): number {
  const cached = next.usage?.input_tokens_details?.cached_tokens ?? 0;
  const share = cached / previous.usage!.input_tokens;
  assert.ok(share >= 0.9, `${label}: cached ${cached} tokens, previous prompt had ${previous.usage!.input_tokens} (${(share * 100).toFixed(1)}%)`);
  return share;
}

/** Reads an SSE stream from `responses.create({ stream: true })`: the terminal response and time to first delta. */
async function readStream(stream: AsyncIterable<ServerEvent>, started: number): Promise<{ response: ResponseLike; ttftMs: number | undefined; types: string[] }> {
  let ttftMs: number | undefined;
  const types: string[] = [];
  let response: ResponseLike | undefined;
  for await (const event of stream) {
    types.push(event.type);
    if (ttftMs === undefined && (event.type === 'response.output_text.delta' || event.type === 'response.function_call_arguments.delta' || event.type === 'response.output_item.added')) ttftMs = Date.now() - started;
    if (['response.completed', 'response.incomplete', 'response.failed'].includes(event.type)) response = event.response as ResponseLike;
    if (event.type === 'error') throw new Error(`stream error event: ${JSON.stringify(event)}`);
  }
  assert.ok(response, `stream ended without a terminal event: ${types.join(',')}`);
  return { response, ttftMs, types };
}

test('HTTP JSON: three turns chained with previous_response_id', { timeout: 180_000 }, async (t) => {
  const figures = report.entry(`openai ${sdkVersion}`, 'http-json');
  const before = await scrapeMetrics(flint.url);
  const responses: ResponseLike[] = [];
  for (let turn = 0; turn < 3; turn++) {
    const started = Date.now();
    const response = (await withDeadline(`turn ${turn + 1}`, turnTimeoutMs, (signal) =>
      client.responses.create(
        {
          model: flint.modelId,
          input: turn === 0 ? firstInput : `Turn ${turn + 1}: say hi again.`,
          previous_response_id: responses.at(-1)?.id,
          max_output_tokens: 16,
        },
        { signal },
      ),
    )) as unknown as ResponseLike;
    figures.turnMs.push(Date.now() - started);
    recordTurn(figures, responses, response, turn);
  }
  await assertServed(t, figures, responses, before, 'responses');
});

test('HTTP SSE: three streamed turns chained with previous_response_id', { timeout: 180_000 }, async (t) => {
  const figures = report.entry(`openai ${sdkVersion}`, 'http-sse');
  const before = await scrapeMetrics(flint.url);
  const responses: ResponseLike[] = [];
  for (let turn = 0; turn < 3; turn++) {
    const started = Date.now();
    const { response, ttftMs, types } = await withDeadline(`turn ${turn + 1}`, turnTimeoutMs, async (signal) => {
      const stream = await client.responses.create(
        {
          model: flint.modelId,
          input: turn === 0 ? firstInput : `Turn ${turn + 1}: say hi again.`,
          previous_response_id: responses.at(-1)?.id,
          max_output_tokens: 16,
          stream: true,
        },
        { signal },
      );
      return readStream(stream as unknown as AsyncIterable<ServerEvent>, started);
    });
    figures.turnMs.push(Date.now() - started);
    if (ttftMs !== undefined) figures.ttftMs.push(ttftMs);
    assert.equal(types[0], 'response.created', types.join(','));
    recordTurn(figures, responses, response, turn);
  }
  await assertServed(t, figures, responses, before, 'responses');
});

/** One SDK WebSocket with a queue of server events (error events included). */
class Socket {
  readonly ws: any;
  readonly #events: ServerEvent[] = [];
  #wake: (() => void) | undefined;
  closed: { code: number; reason: string } | undefined;
  opened = false;

  constructor() {
    this.ws = new ResponsesWS(client);
    this.ws.on('event', (event: ServerEvent) => {
      if (event.type !== 'error') this.#push(event);
    });
    this.ws.on('error', (err: { error?: object; message?: string }) => this.#push({ type: 'error', ...(err.error ?? { message: String(err.message ?? err) }) }));
    this.ws.on('close', (code: number, reason: string) => {
      this.closed = { code, reason };
      this.#wake?.();
    });
  }

  async next(deadline: number): Promise<ServerEvent> {
    while (this.#events.length === 0) {
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason})`);
      if (Date.now() >= deadline) throw new Error('no server event in time');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, Math.max(1, deadline - Date.now())).unref();
      });
    }
    return this.#events.shift()!;
  }

  /** Sends `response.create` and collects events up to a terminal or error event. */
  async turn(body: Record<string, unknown>): Promise<{ events: ServerEvent[]; response: ResponseLike; ttftMs: number | undefined }> {
    const started = Date.now();
    const deadline = started + turnTimeoutMs;
    this.ws.send({ type: 'response.create', ...body });
    const events: ServerEvent[] = [];
    let ttftMs: number | undefined;
    for (;;) {
      const event = await this.next(deadline);
      events.push(event);
      if (ttftMs === undefined && ['response.output_text.delta', 'response.function_call_arguments.delta', 'response.output_item.added'].includes(event.type)) ttftMs = Date.now() - started;
      if (event.type === 'error') throw new Error(`server error event: ${JSON.stringify(event)}`);
      if (['response.completed', 'response.incomplete', 'response.failed'].includes(event.type)) return { events, response: event.response as ResponseLike, ttftMs };
    }
  }

  close(): void {
    this.ws.close({ code: 1000, reason: 'done' });
  }

  #push(event: ServerEvent): void {
    this.#events.push(event);
    this.#wake?.();
  }
}

test('WebSocket (ResponsesWS): three turns chained with previous_response_id, store: false', { timeout: 180_000 }, async (t) => {
  const figures = report.entry(`openai ${sdkVersion}`, 'websocket');
  const before = await scrapeMetrics(flint.url);
  const socket = new Socket();
  t.after(() => socket.close());
  const responses: ResponseLike[] = [];
  for (let turn = 0; turn < 3; turn++) {
    const started = Date.now();
    const { response, ttftMs, events } = await socket.turn({
      model: flint.modelId,
      input: turn === 0 ? firstInput : [{ type: 'message', role: 'user', content: `Turn ${turn + 1}: say hi again.` }],
      previous_response_id: responses.at(-1)?.id,
      max_output_tokens: 16,
      store: false,
    });
    figures.turnMs.push(Date.now() - started);
    if (ttftMs !== undefined) figures.ttftMs.push(ttftMs);
    assert.equal(events[0].type, 'response.created', events.map((e) => e.type).join(','));
    recordTurn(figures, responses, response, turn);
  }
  await assertServed(t, figures, responses, before, 'responses_ws');
});

/** Checks one answered turn of a chained session and keeps its figures (cached share of the second prompt). */
function recordTurn(figures: ReturnType<typeof report.entry>, responses: ResponseLike[], response: ResponseLike, turn: number): void {
  assertAnswered(response, `turn ${turn + 1}`);
  if (turn > 0) {
    const share = assertCached(response, responses.at(-1)!, `turn ${turn + 1}`);
    if (turn === 1) figures.cachedShareOfSecondPrompt = share;
  }
  responses.push(response);
  figures.turns++;
}

/** After a three-turn session: its first prompt size, and that Flint served exactly three requests of `api`. */
async function assertServed(t: { diagnostic(message: string): void }, figures: ReturnType<typeof report.entry>, responses: ResponseLike[], before: Awaited<ReturnType<typeof scrapeMetrics>>, api: string): Promise<void> {
  figures.firstPromptTokens = responses[0].usage!.input_tokens;
  const delta = requestDelta(before, await scrapeMetrics(flint.url));
  t.diagnostic(`flint requests: ${JSON.stringify(delta)}`);
  assert.equal(delta[`${api}/200/ok`], 3, JSON.stringify(delta));
}

/** The forced-call assertions shared by both transports. */
function assertForcedCall(response: ResponseLike, label: string): { call_id: string; name: string; arguments: string } {
  assert.equal(response.status, 'completed', `${label}: ${JSON.stringify(response)}`);
  const calls = response.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, `${label}: output ${JSON.stringify(response.output)}`);
  const call = calls[0] as unknown as { call_id: string; name: string; arguments: string };
  assert.equal(call.name, 'get_weather');
  assert.ok(call.call_id, 'function_call without call_id');
  const args = JSON.parse(call.arguments) as { city?: unknown };
  assert.equal(typeof args.city, 'string', `arguments ${call.arguments}`);
  return call;
}

function assertFinalAnswer(response: ResponseLike, label: string): void {
  assert.equal(response.status, 'completed', `${label}: ${JSON.stringify(response)}`);
  const message = response.output.find((o) => o.type === 'message');
  assert.ok(message, `${label}: no message in ${JSON.stringify(response.output)}`);
  const text = (message.content as Array<{ type: string; text: string }>).filter((c) => c.type === 'output_text').map((c) => c.text).join('');
  assert.equal(typeof (JSON.parse(text) as { ok?: unknown }).ok, 'boolean', `${label}: ${text}`);
}

for (const toolChoice of [{ type: 'function', name: 'get_weather' }, 'required'] as const) {
  test(`HTTP: forced function call (tool_choice ${JSON.stringify(toolChoice)}) and its output round-trip`, { timeout: 120_000 }, async (t) => {
    const before = await scrapeMetrics(flint.url);
    const first = (await withDeadline('forced call', turnTimeoutMs, (signal) =>
      client.responses.create({ model: flint.modelId, input: 'What is the weather in Paris?', tools: [weatherTool], tool_choice: toolChoice, max_output_tokens: 64 }, { signal }),
    )) as unknown as ResponseLike;
    const call = assertForcedCall(first, 'forced call');
    const second = (await withDeadline('after the call', turnTimeoutMs, (signal) =>
      client.responses.create(
        {
          model: flint.modelId,
          previous_response_id: first.id,
          input: [{ type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ city: 'Paris', celsius: 21 }) }],
          tools: [weatherTool],
          text: shortJsonAnswer,
          max_output_tokens: 64,
        },
        { signal },
      ),
    )) as unknown as ResponseLike;
    assertFinalAnswer(second, 'after the call');
    const cached = second.usage?.input_tokens_details?.cached_tokens ?? 0;
    t.diagnostic(`call prompt ${first.usage?.input_tokens} tokens; follow-up ${second.usage?.input_tokens} tokens, ${cached} cached`);
    assertCached(second, first, 'follow-up after the call');
    const delta = requestDelta(before, await scrapeMetrics(flint.url));
    assert.equal(delta['responses/200/ok'], 2, JSON.stringify(delta));
  });
}

test('WebSocket: forced function call (tool_choice required) and its output round-trip', { timeout: 120_000 }, async (t) => {
  const before = await scrapeMetrics(flint.url);
  const socket = new Socket();
  t.after(() => socket.close());
  const first = await socket.turn({ model: flint.modelId, input: [{ type: 'message', role: 'user', content: 'What is the weather in Paris?' }], tools: [weatherTool], tool_choice: 'required', store: false, max_output_tokens: 64 });
  const call = assertForcedCall(first.response, 'forced call');
  const second = await socket.turn({
    model: flint.modelId,
    previous_response_id: first.response.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ city: 'Paris', celsius: 21 }) }],
    tools: [weatherTool],
    text: shortJsonAnswer,
    store: false,
    max_output_tokens: 64,
  });
  assertFinalAnswer(second.response, 'after the call');
  t.diagnostic(`call prompt ${first.response.usage?.input_tokens} tokens; follow-up ${second.response.usage?.input_tokens} tokens, ${second.response.usage?.input_tokens_details?.cached_tokens ?? 0} cached`);
  assertCached(second.response, first.response, 'follow-up after the call');
  const delta = requestDelta(before, await scrapeMetrics(flint.url));
  assert.equal(delta['responses_ws/200/ok'], 2, JSON.stringify(delta));
});

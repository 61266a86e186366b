import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { responseOf, WsSession } from '../helpers/wsSession.js';

let server: TestServer;
let model: string;
before(async () => {
  server = await startServer({ FLINT_CONTEXT_SIZE: '4096', FLINT_API_KEYS: 'ws-key' }, 'websocket:\n  maxFrameBytes: 65536\n');
  model = server.app.scheduler.model!.id;
});
after(() => server?.close());

const wsUrl = () => `${server.url.replace('http', 'ws')}/v1/responses`;
const user = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
const busySlots = async () => (await server.app.metrics.slotsBusy.get()).values[0]?.value ?? -1;

describe('Responses WebSocket mode', () => {
  test('a 5-turn store:false conversation on one socket evaluates only the new tokens each turn', async (t) => {
    const session = new WsSession(server.client);
    t.after(() => session.close());
    let previous: ReturnType<typeof responseOf> | undefined;
    for (let turn = 1; turn <= 5; turn++) {
      const events = await session.turn({
        model,
        store: false,
        instructions: 'You are a terse coding assistant.',
        previous_response_id: previous?.id,
        input: [user(`Turn ${turn}: refactor function number ${turn}.`)],
        max_output_tokens: 8,
        temperature: 0,
      });
      assert.equal(events[0].type, 'response.created');
      assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
      const response = responseOf(events);
      assert.ok(['completed', 'incomplete'].includes(response.status), response.status);
      if (previous) {
        const previousContext = previous.usage.input_tokens + previous.usage.output_tokens;
        assert.ok(response.usage.input_tokens_details.cached_tokens >= previous.usage.input_tokens, `turn ${turn}: cached ${response.usage.input_tokens_details.cached_tokens}, previous context ${previousContext}`);
        assert.ok(response.usage.input_tokens_details.cached_tokens <= previousContext);
      }
      previous = response;
    }
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer ws-key' } })).text();
    assert.match(metrics, /^flint_websocket_sessions_open [1-9]/m);
    assert.match(metrics, /^flint_websocket_turn_time_to_first_token_seconds_count [5-9]/m);
  });

  test('generate:false warms the cache and returns an id the next turn chains from', async (t) => {
    const session = new WsSession(server.client);
    t.after(() => session.close());
    const warm = await session.turn({ model, store: false, generate: false, input: [{ type: 'message', role: 'developer', content: 'Repository context: '.repeat(50) }] });
    const warmed = responseOf(warm);
    assert.equal(warm.at(-1)!.type, 'response.completed');
    assert.deepEqual(warmed.output, []);
    assert.equal(warmed.usage.output_tokens, 0);
    const real = responseOf(await session.turn({ model, store: false, previous_response_id: warmed.id, input: [user('Go.')], max_output_tokens: 4 }));
    // Everything but the warm-up's trailing assistant header (which the real turn replaces with the user turn) is reused.
    assert.ok(real.usage.input_tokens_details.cached_tokens >= warmed.usage.input_tokens * 0.95, `cached ${real.usage.input_tokens_details.cached_tokens} of ${warmed.usage.input_tokens}`);
  });

  test('unknown previous id, bad JSON and unknown events are error events; the socket stays usable', async (t) => {
    const session = new WsSession(server.client);
    t.after(() => session.close());
    const [missing] = await session.turn({ model, store: false, previous_response_id: 'resp_not_on_this_socket', input: [user('x')] });
    assert.equal(missing.type, 'error');
    assert.equal((missing.error as { code: string }).code, 'previous_response_not_found');
    assert.equal(missing.status, 400);
    session.ws.sendRaw('{not json');
    const bad = await session.next();
    assert.equal((bad.error as { code: string }).code, 'invalid_json');
    session.send({ type: 'response.teleport' });
    const unknown = await session.next();
    assert.equal((unknown.error as { code: string }).code, 'unknown_event_type');
    const ok = await session.turn({ model, store: false, input: [user('still here?')], max_output_tokens: 2 });
    assert.equal(ok[0].type, 'response.created');
    assert.equal(session.closed, undefined);
  });

  test('response.cancel ends the running response as cancelled; the socket continues from it', async (t) => {
    const session = new WsSession(server.client);
    t.after(() => session.close());
    session.send({ type: 'response.create', model, store: false, input: [user('a very long answer please')], max_output_tokens: 3000 });
    let event = await session.next();
    while (event.type !== 'response.output_text.delta') event = await session.next();
    session.send({ type: 'response.cancel' });
    const rest = await session.untilTerminal();
    const cancelled = responseOf(rest);
    assert.equal(rest.at(-1)!.type, 'response.incomplete');
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.usage.output_tokens < 3000);
    const next = responseOf(await session.turn({ model, store: false, previous_response_id: cancelled.id, input: [user('shorter, please')], max_output_tokens: 4 }));
    assert.ok(['completed', 'incomplete'].includes(next.status));
    assert.ok(next.usage.input_tokens_details.cached_tokens > 0);
  });

  test('a create sent while another runs is queued and runs next, in order', async (t) => {
    const session = new WsSession(server.client);
    t.after(() => session.close());
    session.send({ type: 'response.create', model, store: false, input: [user('first')], max_output_tokens: 6 });
    session.send({ type: 'response.create', model, store: false, input: [user('second')], max_output_tokens: 6 });
    const first = await session.untilTerminal();
    const second = await session.untilTerminal();
    assert.equal(first[0].type, 'response.created');
    assert.equal(second[0].type, 'response.created');
    assert.notEqual(responseOf(first).id, responseOf(second).id);
  });

  test('closing the socket mid-response aborts it and frees the slot', async () => {
    const session = new WsSession(server.client);
    session.send({ type: 'response.create', model, store: false, input: [user('go on forever')], max_output_tokens: 3000 });
    let event = await session.next();
    while (event.type !== 'response.output_text.delta') event = await session.next();
    assert.ok((await busySlots()) >= 1);
    session.close();
    await until(async () => (await busySlots()) === 0, 'the slot to be freed');
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer ws-key' } })).text();
    assert.match(metrics, /flint_requests_total\{api="responses_ws",status="200",outcome="cancelled"\} [1-9]/);
  });
});

describe('WebSocket handshake and frame limits', () => {
  test('a handshake without a valid key is an HTTP 401, not an open socket', async () => {
    const socket = new WebSocket(wsUrl());
    const status = await new Promise<number>((resolve, reject) => {
      socket.on('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        req.destroy(); // handling this event means owning the refused HTTP exchange
      });
      socket.on('open', () => reject(new Error('socket opened without a key')));
      socket.on('error', () => undefined);
    });
    assert.equal(status, 401);
  });

  test('GET /v1/responses without an upgrade answers 426', async () => {
    const res = await fetch(`${server.url}/v1/responses`, { headers: { authorization: 'Bearer ws-key' } });
    assert.equal(res.status, 426);
    const body = (await res.json()) as { error: { type: string } };
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('an oversized frame closes the socket with 1009; other sockets are unaffected', async () => {
    const bystander = new WsSession(server.client);
    const socket = new WebSocket(wsUrl(), { headers: { authorization: 'Bearer ws-key' } });
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(JSON.stringify({ type: 'response.create', model, input: 'x'.repeat(100_000) }));
    assert.equal(await closed, 1009);
    const ok = await bystander.turn({ model, store: false, input: [user('fine?')], max_output_tokens: 2 });
    assert.equal(ok[0].type, 'response.created');
    bystander.close();
  });
});

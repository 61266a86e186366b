import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';

// Deeply nested or oversized JSON anywhere in a request is a 400 naming the param (413 for size),
// never a 500, and leaves every slot free.
let server: TestServer;

before(async () => {
  server = await startServer({ FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '16384' });
});
after(() => server.close());

const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const busySlots = async () => (await server.app.metrics.slotsBusy.get()).values.reduce((n, v) => n + v.value, 0);

async function post(path: string, body: string) {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; param: string; type: string } } };
}

test('6,000-deep JSON in tool_choice, text.format, tools and response_format is a 400 naming the param', async () => {
  const cases: Array<[string, string, string]> = [
    ['/v1/responses', `{"input":"x","tool_choice":{"type":"allowed_tools","tools":${deep(6000)}}}`, 'tool_choice.tools'],
    ['/v1/responses', `{"input":"x","stream":true,"tool_choice":{"type":"allowed_tools","tools":${deep(6000)}}}`, 'tool_choice.tools'],
    ['/v1/responses', `{"input":"x","text":{"format":{"type":"json_schema","schema":${deep(6000)}}}}`, 'text.format.schema'],
    ['/v1/responses', `{"input":"x","tools":[{"type":"function","name":"f","parameters":{"a":${deep(6000)}}}]}`, 'tools[0].parameters.a'],
    ['/v1/chat/completions', `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":${deep(6000)}}}`, 'response_format.json_schema'],
  ];
  for (const [path, body, paramPrefix] of cases) {
    const res = await post(path, body);
    assert.equal(res.status, 400, `${path} ${paramPrefix}`);
    assert.equal(res.body.error?.type, 'invalid_request_error');
    assert.ok(res.body.error?.param.startsWith(paramPrefix), `param ${res.body.error?.param} for ${paramPrefix}`);
  }
  assert.equal(await busySlots(), 0);
});

test('deep tool-call arguments inside a string are rendered as text, not walked', async () => {
  const args = `{"a":${deep(6000)}}`;
  const res = await post(
    '/v1/chat/completions',
    JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] }, { role: 'tool', tool_call_id: 'c1', content: 'ok' }], max_tokens: 2 }),
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
});

test('a body over server.bodyLimitBytes is a 413 in the OpenAI envelope; a too-long array a 400', async () => {
  const huge = await post('/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(9 * 1024 * 1024) }] }));
  assert.equal(huge.status, 413);
  assert.equal(huge.body.error?.code, 'request_too_large');
  const long = await post('/v1/responses', `{"input":[${Array.from({ length: 50_001 }, () => '"x"').join(',')}]}`);
  assert.equal(long.status, 400);
  assert.equal(long.body.error?.param, 'input');
});

test('a deep WebSocket frame gets an error event naming the param; the socket stays usable', async () => {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`);
  await new Promise((resolve) => ws.once('open', resolve));
  const next = () => new Promise<Record<string, unknown>>((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)))));
  let event = next();
  ws.send(`{"type":"response.create","input":"x","tool_choice":{"type":"allowed_tools","tools":${deep(6000)}}}`);
  const error = (await event) as { type: string; status: number; error: { param: string } };
  assert.equal(error.type, 'error');
  assert.equal(error.status, 400);
  assert.ok(error.error.param.startsWith('tool_choice.tools[0][0]'), error.error.param);
  event = next();
  ws.send(JSON.stringify({ type: 'response.create', input: 'fine', max_output_tokens: 2 }));
  assert.equal((await event).type, 'response.created');
  ws.close();
});

test('a prompt too long for the context is refused before it reaches a worker; the other slot is not held up', async () => {
  // 7 MB of text cannot fit 16k tokens whatever the tokenizer does: counting characters decides it.
  const routed = async () => (await server.app.metrics.routes.get()).values.reduce((n, v) => n + v.value, 0);
  const before = await routed();
  const res = await post('/v1/responses', JSON.stringify({ input: 'x'.repeat(7 * 1024 * 1024) }));
  assert.equal(res.status, 400);
  assert.equal(res.body.error?.code, 'context_length_exceeded');
  assert.match((res.body.error as unknown as { message: string }).message, /at least \d+ tokens/);
  assert.equal(await routed(), before, 'no slot was chosen for it');
  const other = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'small' }], max_tokens: 4 });
  assert.equal(other.object, 'chat.completion');
});

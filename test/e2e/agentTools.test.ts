import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { parsePromText, valueOf } from '../helpers/promText.js';

// The tool shapes Codex CLI sends (shared fixtures would couple tests to a client version; these
// are the shapes as its source defines them): functions, a namespace of functions, a hosted
// web_search tool and a custom (free-text) tool with a grammar.
const codexTools = [
  { type: 'function', name: 'exec_command', description: 'Run a command', strict: false, parameters: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] } },
  {
    type: 'namespace',
    name: 'multi_agent_v1',
    description: 'Sub-agents',
    tools: [
      { type: 'function', name: 'close_agent', description: 'Close an agent', strict: true, parameters: { type: 'object', properties: { id: { type: 'string', enum: ['7', '8'] } }, required: ['id'], additionalProperties: false } },
      { type: 'function', name: 'send_input', description: 'Send input', strict: true, parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false } },
    ],
  },
  { type: 'web_search', external_web_access: false },
  { type: 'custom', name: 'apply_patch', description: 'Apply a patch', format: { type: 'grammar', syntax: 'regex', definition: '\\*\\*\\* Begin Patch\\n[a-z]{1,8}\\n\\*\\*\\* End Patch' } },
];

let server: TestServer;
let model: string;

before(async () => {
  server = await startServer({ FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '2048' });
  model = server.app.scheduler.model!.id;
});
after(() => server.close());

interface Output {
  type: string;
  name?: string;
  namespace?: string;
  call_id?: string;
  arguments?: string;
  input?: string;
}

async function create(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model, ...body }) });
  return { res, body: (await res.json()) as { status: string; output: Output[]; usage: { input_tokens: number; input_tokens_details: { cached_tokens: number }; output_tokens_details: { reasoning_tokens: number } }; error?: { code: string; param: string } } };
}

test('Codex tool shapes are accepted: namespaced calls come back with their namespace and continue from the cache', async () => {
  const before = parsePromText(await (await fetch(`${server.url}/metrics`)).text());
  const first = await create({
    input: [{ type: 'message', role: 'developer', content: 'You are a coding agent.' }, { type: 'message', role: 'user', content: 'close agent 7' }],
    tools: codexTools,
    tool_choice: { type: 'function', name: 'close_agent', namespace: 'multi_agent_v1' },
    store: false,
    max_output_tokens: 400,
    temperature: 0,
  });
  assert.equal(first.res.status, 200);
  const call = first.body.output.find((o) => o.type === 'function_call')!;
  assert.equal(call.name, 'close_agent');
  assert.equal(call.namespace, 'multi_agent_v1');
  assert.equal(typeof JSON.parse(call.arguments!).id, 'string');
  const afterFirst = parsePromText(await (await fetch(`${server.url}/metrics`)).text());
  assert.equal(valueOf(afterFirst, 'flint_hosted_tools_ignored_total', { type: 'web_search' }) - valueOf(before, 'flint_hosted_tools_ignored_total', { type: 'web_search' }), 1);

  // Codex sends the whole conversation back (store: false): the call with its namespace, then its output.
  const second = await create({
    input: [
      { type: 'message', role: 'developer', content: 'You are a coding agent.' },
      { type: 'message', role: 'user', content: 'close agent 7' },
      { type: 'function_call', call_id: call.call_id, name: call.name, namespace: call.namespace, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: 'closed' },
    ],
    tools: codexTools,
    store: false,
    max_output_tokens: 4,
  });
  assert.equal(second.res.status, 200);
  assert.ok(second.body.usage.input_tokens_details.cached_tokens >= first.body.usage.input_tokens, `cached ${second.body.usage.input_tokens_details.cached_tokens} of ${first.body.usage.input_tokens}`);
});

test('a forced custom tool call is a custom_tool_call whose input follows the tool grammar', async () => {
  const { res, body } = await create({ input: 'patch it', tools: codexTools, tool_choice: { type: 'custom', name: 'apply_patch' }, max_output_tokens: 64, temperature: 1, seed: 3 });
  assert.equal(res.status, 200);
  const call = body.output.find((o) => o.type === 'custom_tool_call')!;
  assert.equal(call.name, 'apply_patch');
  assert.match(call.input!, /^\*\*\* Begin Patch\n[a-z]{1,8}\n\*\*\* End Patch$/);
  const next = await create({
    input: [{ role: 'user', content: 'patch it' }, { type: 'custom_tool_call', call_id: call.call_id, name: 'apply_patch', input: call.input }, { type: 'custom_tool_call_output', call_id: call.call_id, output: 'Done!' }],
    tools: codexTools,
    max_output_tokens: 2,
  });
  assert.equal(next.res.status, 200);
});

test('Chat Completions: hosted tools are ignored, custom tools come back as custom tool calls', async () => {
  const completion = await server.client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'patch' }],
    tools: [{ type: 'custom', custom: { name: 'apply_patch', format: { type: 'grammar', grammar: { syntax: 'regex', definition: '[a-z]{3}' } } } }, { type: 'function', function: { name: 'noop', parameters: { type: 'object', properties: {} } } }] as never,
    tool_choice: { type: 'custom', custom: { name: 'apply_patch' } } as never,
    max_tokens: 32,
  });
  const call = completion.choices[0].message.tool_calls![0] as unknown as { type: string; custom: { name: string; input: string } };
  assert.equal(call.type, 'custom');
  assert.equal(call.custom.name, 'apply_patch');
});

test('hostedTools: reject refuses hosted tools with 400 naming the tool', async () => {
  await using strict = await startServer({}, 'responses:\n  hostedTools: reject\n');
  const res = await fetch(`${strict.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'x', tools: [{ type: 'web_search' }] }) });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: { code: string; param: string } };
  assert.equal(body.error.code, 'unsupported_tool_type');
  assert.equal(body.error.param, 'tools[0].type');
});

test('x-codex-turn-state names the slot that served; replaying it routes back there, a forged one is ignored', async () => {
  const first = await create({ input: 'turn state one', max_output_tokens: 2, prompt_cache_key: 'turn-a' });
  const token = first.res.headers.get('x-codex-turn-state');
  assert.ok(token && token.length > 20, 'a turn-state token is set');
  const routes = async () => parsePromText(await (await fetch(`${server.url}/metrics`)).text());
  const before = await routes();
  const again = await create({ input: 'turn state one', max_output_tokens: 2 }, { 'x-codex-turn-state': token! });
  assert.equal(again.res.status, 200);
  assert.ok(again.body.usage.input_tokens_details.cached_tokens > 0);
  const mid = await routes();
  assert.equal(valueOf(mid, 'flint_slot_routes_total', { route: 'affinity' }) - valueOf(before, 'flint_slot_routes_total', { route: 'affinity' }), 1);
  const forged = await create({ input: 'x', max_output_tokens: 2 }, { 'x-codex-turn-state': 'AAAA' + token!.slice(4) });
  assert.equal(forged.res.status, 200);
});

test('a full queue is a 503 server_overloaded with Retry-After before any byte, also for streaming Responses', async () => {
  await using tight = await startServer({ FLINT_SLOTS: '1' }, 'scheduler:\n  maxQueueLength: 0\n');
  const busy = fetch(`${tight.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'busy', max_output_tokens: 3000, stream: true }) });
  const reader = (await busy).body!.getReader();
  await reader.read(); // the only slot is now taken
  const res = await fetch(`${tight.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'x', stream: true }) });
  assert.equal(res.status, 503);
  assert.ok(Number(res.headers.get('retry-after')) >= 1);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'server_overloaded');
  await reader.cancel();
});

test('a queued stream gets progress events (real data events) on SSE, WebSocket and Chat until it starts', async () => {
  // One slot, held by a long generation (the context allows ~30k tokens: seconds on the tiny model).
  await using slow = await startServer({ FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '32768' }, 'server:\n  progressEventMs: 150\n');
  const hold = await fetch(`${slow.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hold' }], max_tokens: 30000, stream: true }) });
  const holder = hold.body!.getReader();
  await holder.read();

  const sse = await fetch(`${slow.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'queued', max_output_tokens: 2, stream: true }) });
  assert.equal(sse.status, 200);
  const reader = sse.body!.getReader();
  let text = '';
  while (!/"queue_position":1/.test(text)) text += await readSome(reader);
  assert.match(text, /event: response\.in_progress\ndata: \{"type":"response\.in_progress".*"progress":\{"evaluated_tokens":0,"total_tokens":0,"queue_position":1\}/);

  const chat = await fetch(`${slow.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'queued too' }], max_tokens: 2, stream: true }) });
  const chatReader = chat.body!.getReader();
  let chatText = '';
  while (!/flint_progress/.test(chatText)) chatText += await readSome(chatReader);
  assert.match(chatText, /data: \{"id":"chatcmpl-[^"]+","object":"chat\.completion\.chunk".*"choices":\[\],"flint_progress":\{"evaluated_tokens":0,"total_tokens":0,"queue_position":2\}/);

  const ws = new WebSocket(`${slow.url.replace('http', 'ws')}/v1/responses`);
  await new Promise((resolve) => ws.once('open', resolve));
  const types: string[] = [];
  const wsProgress = new Promise<Record<string, unknown>>((resolve) => {
    ws.on('message', (data) => {
      const event = JSON.parse(String(data)) as { type: string; progress?: Record<string, unknown> };
      types.push(event.type);
      if (event.progress) resolve(event.progress);
    });
  });
  ws.send(JSON.stringify({ type: 'response.create', input: 'queued on a socket', max_output_tokens: 2 }));
  const progress = await wsProgress;
  assert.equal(progress.queue_position, 3);
  assert.deepEqual(types.slice(0, 2), ['response.created', 'response.in_progress']);

  await holder.cancel(); // frees the slot: the queued ones run to completion
  while (!/event: response\.(completed|incomplete)/.test(text)) text += await readSome(reader);
  while (!/\[DONE\]/.test(chatText)) chatText += await readSome(chatReader);
  await new Promise<void>((resolve) => ws.on('message', (data) => /"type":"response\.(completed|incomplete)"/.test(String(data)) && resolve()));
  ws.close();
});

/** The next chunk of a response body as text; a body that ends first fails the test. */
async function readSome(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  const { value, done } = await reader.read();
  if (done) throw new Error('the stream ended early');
  return new TextDecoder().decode(value);
}

test('item_reference inputs resolve to stored output items; unknown ids are a 400 naming the item', async () => {
  const first = await create({ input: 'remember me', max_output_tokens: 3 });
  const message = first.body.output.find((o) => o.type === 'message') as Output & { id: string };
  const next = await create({ input: [{ role: 'user', content: 'remember me' }, { type: 'item_reference', id: message.id }, { role: 'user', content: 'and?' }], max_output_tokens: 2 });
  assert.equal(next.res.status, 200);
  assert.ok(next.body.usage.input_tokens_details.cached_tokens >= first.body.usage.input_tokens, 'the referenced item renders as the answer it was');
  const unknown = await create({ input: [{ type: 'item_reference', id: 'msg_nope' }] });
  assert.equal(unknown.res.status, 400);
  assert.equal(unknown.body.error?.param, 'input[0].id');
});

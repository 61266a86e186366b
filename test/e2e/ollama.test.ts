import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

// Ollama's API as its clients call it: `curl -d` bodies (no JSON content type), NDJSON streams by
// default, `name:latest` model names, options, tools and `format`.
let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_SLOTS: '1' });
});
after(() => server?.close());

const name = () => `${server.app.scheduler.model!.id}:latest`;

async function post(path: string, body: unknown): Promise<Response> {
  // As `curl -d` sends it: form-encoded content type, JSON body.
  return fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: JSON.stringify(body) });
}

const lines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);

test('version, tags, ps and show describe the served model under its name with :latest', async () => {
  const version = (await (await fetch(`${server.url}/api/version`)).json()) as { version: string };
  assert.match(version.version, /^\d+\.\d+\.\d+$/);
  const tags = (await (await fetch(`${server.url}/api/tags`)).json()) as { models: Array<Record<string, any>> };
  assert.equal(tags.models.length, 1);
  assert.equal(tags.models[0].name, name());
  assert.equal(tags.models[0].details.format, 'gguf');
  assert.ok(tags.models[0].size > 0);
  const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as { models: Array<Record<string, any>> };
  assert.equal(ps.models[0].context_length, server.app.scheduler.model!.contextSize);
  const show = (await (await post('/api/show', { model: name() })).json()) as Record<string, any>;
  assert.deepEqual(show.capabilities, ['completion', 'tools', 'insert', 'thinking']);
  assert.equal(show.model_info[`${show.details.family}.context_length`], server.app.scheduler.model!.contextSize);
  const missing = await post('/api/show', { model: 'llama3:8b' });
  assert.equal(missing.status, 404);
  assert.match(((await missing.json()) as { error: string }).error, /llama3:8b/);
});

test('chat streams NDJSON by default, ends with done and counts, and a second turn reuses the cache', async () => {
  const messages = [
    { role: 'system', content: 'You are terse. '.repeat(40) },
    { role: 'user', content: 'Name a sorting algorithm.' },
  ];
  const res = await post('/api/chat', { model: name(), messages, options: { num_predict: 4, temperature: 0 } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
  const events = lines(await res.text());
  const last = events.at(-1)!;
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
  assert.equal(last.eval_count, 4);
  assert.ok(last.prompt_eval_count > 40 && last.total_duration > 0 && last.eval_duration > 0);
  assert.ok(events.slice(0, -1).every((e) => e.done === false && e.message.role === 'assistant'));
  const answer = events.map((e) => e.message.content).join('');

  const cachedBefore = (await server.app.metrics.cachedPromptTokens.get()).values[0]?.value ?? 0;
  const next = (await (await post('/api/chat', { model: name(), stream: false, messages: [...messages, { role: 'assistant', content: answer }, { role: 'user', content: 'Another.' }], options: { num_predict: 2 } })).json()) as Record<string, any>;
  assert.equal(next.done, true);
  assert.equal(next.message.role, 'assistant');
  const cached = ((await server.app.metrics.cachedPromptTokens.get()).values[0]?.value ?? 0) - cachedBefore;
  assert.ok(cached >= last.prompt_eval_count - 1, `second turn: ${cached} of ${next.prompt_eval_count} prompt tokens cached`);
});

test('tools are rendered into the prompt, and a conversation with calls and results is served', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city.', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Lima'] } }, required: ['city'] } } }];
  const messages = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', content: '18 C, clear', tool_name: 'get_weather' },
    { role: 'user', content: 'And Lima?' },
  ];
  const withTools = (await (await post('/api/chat', { model: name(), messages, tools, stream: false, options: { num_predict: 2, temperature: 0 } })).json()) as Record<string, any>;
  const without = (await (await post('/api/chat', { model: name(), messages, stream: false, options: { num_predict: 2, temperature: 0 } })).json()) as Record<string, any>;
  assert.equal(withTools.done, true);
  assert.equal(withTools.message.role, 'assistant');
  assert.ok(withTools.prompt_eval_count > without.prompt_eval_count + 20, `with tools ${withTools.prompt_eval_count} prompt tokens, without ${without.prompt_eval_count}`);
});

test('format json constrains the answer; generate does raw prompts, fill-in-the-middle and the load-only call', async () => {
  const json = (await (await post('/api/generate', { model: name(), prompt: 'Give a JSON object.', format: 'json', stream: false, options: { num_predict: 24, temperature: 0 } })).json()) as Record<string, any>;
  assert.equal(json.done, true);
  assert.ok(json.response.trimStart().startsWith('{'), json.response);
  const fim = (await (await post('/api/generate', { model: name(), prompt: 'function add(a, b) {\n  return ', suffix: ';\n}\n', stream: false, options: { num_predict: 3 } })).json()) as Record<string, any>;
  assert.equal(fim.eval_count, 3);
  const raw = await post('/api/generate', { model: name(), prompt: 'The quick brown', raw: true, options: { num_predict: 2 } });
  const rawLines = lines(await raw.text());
  assert.equal(rawLines.at(-1)!.done, true);
  assert.ok(rawLines.slice(0, -1).every((l) => typeof l.response === 'string'));
  const load = (await (await post('/api/generate', { model: name() })).json()) as Record<string, any>;
  assert.deepEqual([load.done, load.done_reason, load.response], [true, 'load', '']);
});

test('errors use Ollama\'s envelope; embeddings say they are not supported; requests count under their own api', async () => {
  const before = await fetch(`${server.url}/metrics`).then((r) => r.text());
  const count = (text: string, api: string, status: string) => Number(text.split('\n').find((l) => l.startsWith(`flint_requests_total{api="${api}",status="${status}"`))?.split(' ').at(-1) ?? 0);
  for (const [path, body] of [
    ['/api/chat', { model: name(), messages: 'hi' }],
    ['/api/chat', { model: 'nope:7b', messages: [] }],
    ['/api/generate', { model: name(), prompt: 'x', options: { num_predict: -9 } }],
    ['/api/generate', { model: name(), prompt: '{', images: ['aGk='] }],
  ] as const) {
    const res = await post(path, body);
    assert.ok(res.status === 400 || res.status === 404, `${path} ${JSON.stringify(body)}: ${res.status}`);
    assert.equal(typeof ((await res.json()) as { error: unknown }).error, 'string');
  }
  const embed = await post('/api/embed', { model: name(), input: 'x' });
  assert.equal(embed.status, 400);
  assert.match(((await embed.json()) as { error: string }).error, /embeddings are not supported/);
  const bad = await fetch(`${server.url}/api/chat`, { method: 'POST', body: '{"model": ' });
  assert.equal(bad.status, 400);
  assert.equal(typeof ((await bad.json()) as { error: unknown }).error, 'string');
  const after = await fetch(`${server.url}/metrics`).then((r) => r.text());
  assert.ok(count(after, 'ollama_chat', '404') - count(before, 'ollama_chat', '404') >= 1);
  assert.ok(count(after, 'ollama_generate', '400') - count(before, 'ollama_generate', '400') >= 2);
});

test('a JSON body is read whatever the Content-Type says, a malformed one included (Ollama ignores it)', async () => {
  const body = JSON.stringify({ model: name(), stream: false, prompt: 'def f(', options: { num_predict: 1 } });
  for (const contentType of ['application/json', 'text/plain', 'application/json, text/plain', 'json', 'application/json;;;', ' ', '*/*']) {
    const res = await fetch(`${server.url}/api/generate`, { method: 'POST', headers: { 'content-type': contentType }, body });
    assert.equal(res.status, 200, `${JSON.stringify(contentType)}: ${await res.clone().text()}`);
    assert.equal(((await res.json()) as Record<string, any>).done, true);
  }
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

// Anthropic's Messages API as Claude Code and the SDKs call it, over real HTTP and inference.
let server: TestServer;
const key = 'sk-ant-test-key';
before(async () => {
  server = await startServer({ FLINT_SLOTS: '1', FLINT_API_KEYS: key });
});
after(() => server?.close());

const model = () => server.app.scheduler.model!.id;
const headers = { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' };

async function messages(body: Record<string, unknown>, extraHeaders: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { ...headers, ...extraHeaders }, body: JSON.stringify({ model: model(), ...body }) });
}

const system = [{ type: 'text', text: 'You are a careful coding agent. '.repeat(30), cache_control: { type: 'ephemeral' } }];
const weatherTool = { name: 'get_weather', description: 'Weather for a city.', input_schema: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Lima'] } }, required: ['city'] } };

function events(text: string): Array<{ event: string; data: Record<string, any> }> {
  return text
    .split('\n\n')
    .filter((f) => f.startsWith('event: '))
    .map((f) => {
      const [eventLine, dataLine] = f.split('\n');
      return { event: eventLine.slice(7), data: JSON.parse(dataLine.slice(6)) as Record<string, any> };
    });
}

test('a message, then the next turn of the conversation read from the cache (cache_read_input_tokens)', async () => {
  const first = (await (await messages({ max_tokens: 4, system, messages: [{ role: 'user', content: 'Say hi.' }] })).json()) as Record<string, any>;
  assert.equal(first.type, 'message');
  assert.equal(first.role, 'assistant');
  assert.equal(first.stop_reason, 'max_tokens');
  assert.equal(first.usage.output_tokens, 4);
  assert.equal(first.content[0].type, 'text');
  const text = first.content[0].text as string;
  const second = (await (await messages({ max_tokens: 2, system, messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: text }, { role: 'user', content: [{ type: 'text', text: 'Again.' }] }] })).json()) as Record<string, any>;
  const prompt = first.usage.input_tokens + first.usage.cache_read_input_tokens;
  assert.ok(second.usage.cache_read_input_tokens >= prompt - 2, `second turn read ${second.usage.cache_read_input_tokens} of the first prompt's ${prompt} tokens from the cache`);
  assert.equal(second.usage.cache_creation_input_tokens, 0);
});

test('streaming: the whole event sequence, in order', async () => {
  const res = await messages({ max_tokens: 3, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.status, 200);
  const seen = events(await res.text());
  const names = seen.map((e) => e.event);
  assert.deepEqual(names.slice(0, 3), ['message_start', 'ping', 'content_block_start']);
  assert.deepEqual(names.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  assert.ok(names.slice(3, -3).every((n) => n === 'content_block_delta'));
  assert.ok(seen.every((e) => e.data.type === e.event), 'each data names its event');
  const delta = seen.find((e) => e.event === 'message_delta')!.data;
  assert.deepEqual(delta.delta, { stop_reason: 'max_tokens', stop_sequence: null });
  assert.equal(delta.usage.output_tokens, 3);
  assert.equal(seen[0].data.message.usage.output_tokens, 0);
});

test('a forced tool call comes back as tool_use (JSON and stream), and tool_result continues the conversation', async () => {
  const forced = (await (await messages({ max_tokens: 64, tools: [weatherTool], tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'Weather in Paris?' }] })).json()) as Record<string, any>;
  assert.equal(forced.stop_reason, 'tool_use');
  const use = forced.content.find((b: { type: string }) => b.type === 'tool_use');
  assert.equal(use.name, 'get_weather');
  assert.ok(['Paris', 'Lima'].includes(use.input.city));
  const streamed = await messages({
    max_tokens: 64,
    stream: true,
    tools: [weatherTool],
    tool_choice: { type: 'tool', name: 'get_weather' },
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: [use] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: '18 C' }] }, { type: 'text', text: 'And Lima?' }] },
    ],
  });
  const seen = events(await streamed.text());
  const start = seen.find((e) => e.event === 'content_block_start' && e.data.content_block.type === 'tool_use')!;
  assert.equal(start.data.content_block.name, 'get_weather');
  const json = seen.filter((e) => e.event === 'content_block_delta' && e.data.delta.type === 'input_json_delta').map((e) => e.data.delta.partial_json).join('');
  assert.ok(['Paris', 'Lima'].includes(JSON.parse(json).city));
  assert.equal(seen.find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'tool_use');
});

test('count_tokens counts the rendered prompt exactly as a message uses it', async () => {
  const body = { system, messages: [{ role: 'user', content: 'How many tokens is this?' }] };
  const counted = (await (await fetch(`${server.url}/v1/messages/count_tokens`, { method: 'POST', headers, body: JSON.stringify({ model: model(), ...body }) })).json()) as { input_tokens: number };
  const used = (await (await messages({ ...body, max_tokens: 1 })).json()) as Record<string, any>;
  assert.equal(counted.input_tokens, used.usage.input_tokens + used.usage.cache_read_input_tokens);
});

test('count_tokens counts a prompt longer than the context (a message with it is refused)', async () => {
  const long = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
  const short = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
  const count = async (text: string) => {
    const res = await fetch(`${server.url}/v1/messages/count_tokens`, { method: 'POST', headers, body: JSON.stringify({ model: model(), messages: [{ role: 'user', content: text }] }) });
    assert.equal(res.status, 200);
    return ((await res.json()) as { input_tokens: number }).input_tokens;
  };
  const [longCount, shortCount] = [await count(long), await count(short)];
  assert.ok(longCount > 1024, `counted ${longCount}`);
  // the count grows with the text as it does below the context (10x the words, about 10x the tokens)
  assert.ok(longCount > 8 * (shortCount - 10), `long ${longCount}, short ${shortCount}`);
  const refused = await messages({ max_tokens: 1, messages: [{ role: 'user', content: long }] });
  assert.equal(refused.status, 400);
  assert.equal(((await refused.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
});

test("Claude Code's per-request attribution block is left out of the prompt, so turns share their prefix", async () => {
  const withAttribution = (cch: string) => [{ type: 'text', text: `x-anthropic-billing-header: cc_version=2.0.14.abc; cc_entrypoint=sdk-cli; cch=${cch};` }, ...system];
  await messages({ max_tokens: 1, system: withAttribution('11111'), messages: [{ role: 'user', content: 'Read the failing test.' }] });
  const next = (await (await messages({ max_tokens: 1, system: withAttribution('22222'), messages: [{ role: 'user', content: 'Read the failing test.' }] })).json()) as Record<string, any>;
  // The whole prompt but its last token comes from the cache although the first system block changed.
  assert.equal(next.usage.input_tokens, 1);
  const plain = (await (await messages({ max_tokens: 1, system, messages: [{ role: 'user', content: 'Read the failing test.' }] })).json()) as Record<string, any>;
  assert.equal(plain.usage.input_tokens + plain.usage.cache_read_input_tokens, next.usage.input_tokens + next.usage.cache_read_input_tokens, 'the block adds no tokens');
});

test("errors in Anthropic's envelope: bad bodies, no key, a wrong key, an unknown model; Bearer works too", async () => {
  const bad = await messages({ messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys((await bad.json()) as object).sort(), ['error', 'type']);
  for (const [extra, status, type] of [
    [{ 'x-api-key': '' }, 401, 'authentication_error'],
    [{ 'x-api-key': 'sk-wrong' }, 401, 'authentication_error'],
  ] as const) {
    const res = await messages({ max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }, extra);
    assert.equal(res.status, status);
    const body = (await res.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, type);
  }
  const unknown = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify({ model: 'claude-opus-4', max_tokens: 1, messages: [] }) });
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: { type: string } }).error.type, 'not_found_error');
  const image = await messages({ max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'aGk=' } }] }] });
  assert.equal(image.status, 400);
  const bearer = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ model: model(), max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(bearer.status, 200);
});

test('a request shaped as Claude Code 2.1 sends it (beta query, billing block, system message inside messages, adaptive thinking) streams a turn', async () => {
  const body = {
    model: model(),
    max_tokens: 6,
    stream: true,
    system: [
      { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.197.123; cc_entrypoint=sdk-cli;' },
      { type: 'text', text: "You are a Claude agent, built on Anthropic's Claude Agent SDK.", cache_control: { type: 'ephemeral' } },
      { type: 'text', text: 'You are an interactive CLI tool that helps users with software engineering tasks. '.repeat(3), cache_control: { type: 'ephemeral' } },
    ],
    tools: [
      { name: 'Bash', description: 'Run a shell command.', input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] } },
      { name: 'Read', description: 'Read a file.', input_schema: { type: 'object', properties: { file_path: { type: 'string' } }, required: ['file_path'] } },
    ],
    messages: [
      { role: 'user', content: [{ type: 'text', text: '<system-reminder>Today is 2026-12-02.</system-reminder>' }, { type: 'text', text: 'say hi', cache_control: { type: 'ephemeral' } }] },
      { role: 'system', content: 'Available agent types: general-purpose.' },
    ],
    metadata: { user_id: JSON.stringify({ device_id: 'd', account_uuid: '', session_id: 's' }) },
    thinking: { type: 'adaptive' },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    output_config: { effort: 'high' },
  };
  const res = await fetch(`${server.url}/v1/messages?beta=true`, {
    method: 'POST',
    headers: { ...headers, 'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14', 'x-app': 'cli', 'user-agent': 'claude-cli/2.1.197 (external, sdk-cli)' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const seen = events(text);
  assert.equal(seen.at(-1)!.event, 'message_stop');
  assert.equal(seen.find((e) => e.event === 'message_delta')!.data.usage.output_tokens, 6);
});

/**
 * The official `@anthropic-ai/sdk` (pinned in scripts/installClients.ts, loaded from .clients/)
 * against a spawned Flint with an API key: `messages.create` (JSON), `messages.stream` (the SSE
 * event sequence through the SDK's parser), two turns of one conversation with the second's
 * `cache_read_input_tokens`, a forced tool call and its `tool_result`, `countTokens`, and an
 * error the SDK turns into its typed exception.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientVersion, loadClient, longInstructions, Report, startFlint, withDeadline, type Flint } from './support.js';

const report = new Report('anthropic');
const apiKey = 'sk-ant-flint-clients';
let flint: Flint;
let client: any;
let Anthropic: any;
let version = '';

before(async () => {
  flint = await startFlint({ contextSize: 8192, env: { FLINT_API_KEYS: apiKey } });
  Anthropic = (await loadClient<{ default: new (o: Record<string, unknown>) => any }>('@anthropic-ai/sdk')).default;
  version = clientVersion('@anthropic-ai/sdk');
  client = new Anthropic({ baseURL: flint.url, apiKey, maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  report.write();
  await flint?.stop();
});

const weatherTool = { name: 'get_weather', description: 'Weather for a city.', input_schema: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Lima'] } }, required: ['city'] } };

test('@anthropic-ai/sdk: create, then stream the next turn from the cache', async () => {
  const entry = report.entry(`@anthropic-ai/sdk ${version}`, 'messages (create, then stream)');
  const system = [{ type: 'text', text: longInstructions, cache_control: { type: 'ephemeral' } }];
  const started = Date.now();
  const first = await client.messages.create({ model: flint.modelId, max_tokens: 8, system, messages: [{ role: 'user', content: 'Say hi.' }] });
  entry.turnMs.push(Date.now() - started);
  entry.turns++;
  assert.equal(first.type, 'message');
  assert.equal(first.usage.output_tokens, 8);
  const firstPrompt = first.usage.input_tokens + first.usage.cache_read_input_tokens;
  entry.firstPromptTokens = firstPrompt;
  const text = first.content.filter((b: { type: string }) => b.type === 'text').map((b: { text: string }) => b.text).join('');

  const streamStarted = Date.now();
  const final = await withDeadline('stream', 60_000, async () => {
    const stream = client.messages.stream({ model: flint.modelId, max_tokens: 4, system, messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: text }, { role: 'user', content: 'Again.' }] });
    stream.on('text', () => {
      if (entry.ttftMs.length === 0) entry.ttftMs.push(Date.now() - streamStarted);
    });
    return stream.finalMessage();
  });
  entry.turnMs.push(Date.now() - streamStarted);
  entry.turns++;
  assert.equal(final.stop_reason, 'max_tokens');
  entry.cachedShareOfSecondPrompt = final.usage.cache_read_input_tokens / firstPrompt;
  assert.ok(entry.cachedShareOfSecondPrompt >= 0.9, `second turn read ${final.usage.cache_read_input_tokens} of ${firstPrompt} tokens from the cache`);
});

test('@anthropic-ai/sdk: a forced tool call, its result, and countTokens', async () => {
  const forced = await client.messages.create({ model: flint.modelId, max_tokens: 64, tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather' }, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
  assert.equal(forced.stop_reason, 'tool_use');
  const use = forced.content.find((b: { type: string }) => b.type === 'tool_use');
  assert.ok(['Paris', 'Lima'].includes(use.input.city));
  const next = await client.messages.create({
    model: flint.modelId,
    max_tokens: 4,
    tools: [weatherTool],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: forced.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18 C, clear' }] },
    ],
  });
  assert.equal(next.type, 'message');
  const counted = await client.messages.countTokens({ model: flint.modelId, messages: [{ role: 'user', content: 'How long is this?' }] });
  assert.ok(counted.input_tokens > 0);
});

test('@anthropic-ai/sdk: errors arrive as the SDK\'s typed exceptions', async () => {
  const wrongKey = new Anthropic({ baseURL: flint.url, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(wrongKey.messages.create({ model: flint.modelId, max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }), (err: any) => err instanceof Anthropic.AuthenticationError && err.status === 401);
  await assert.rejects(client.messages.create({ model: 'claude-nope', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }), (err: any) => err instanceof Anthropic.NotFoundError);
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { thinkModelPath } from '../helpers/testModel.js';

// A model with a thought segment behind the Messages API: `thinking` blocks come out with a
// signature (the sealed thought), and sent back they render the thought as it stood in the
// context, so the next turn continues from the cache.
let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_MODEL: await thinkModelPath(), FLINT_CONTEXT_SIZE: '2048' });
});
after(() => server?.close());

type Message = { content: Array<{ type: string; [k: string]: any }>; usage: { input_tokens: number; cache_read_input_tokens: number; output_tokens: number } };

async function create(body: Record<string, unknown>): Promise<Message> {
  const res = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: server.app.scheduler.model!.id, temperature: 0, ...body }) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text) as Message;
}

const question = { role: 'user', content: 'why is the sky blue?' };

test('thinking blocks carry a signature that brings the thought back as it stood, so the next turn is cached', async () => {
  const first = await create({ max_tokens: 12, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [question] });
  const thought = first.content.find((b) => b.type === 'thinking');
  assert.ok(thought && thought.thinking.length > 0, JSON.stringify(first.content));
  assert.ok(typeof thought.signature === 'string' && thought.signature.length > 40);
  const firstPrompt = first.usage.input_tokens + first.usage.cache_read_input_tokens;

  const next = { role: 'user', content: 'and at sunset?' };
  const withThought = await create({ max_tokens: 2, messages: [question, { role: 'assistant', content: first.content }, next] });
  const forged = await create({ max_tokens: 2, messages: [question, { role: 'assistant', content: first.content.map((b) => (b.type === 'thinking' ? { ...b, signature: 'not-a-flint-signature' } : b)) }, next] });
  const prompt = (m: Message) => m.usage.input_tokens + m.usage.cache_read_input_tokens;
  assert.ok(withThought.usage.cache_read_input_tokens >= firstPrompt, `cached ${withThought.usage.cache_read_input_tokens} < first prompt ${firstPrompt}`);
  assert.ok(prompt(withThought) > prompt(forged), 'the thought is rendered back only with a signature Flint made');
});

test('streamed thinking: thinking_delta, then signature_delta, then the text block', async () => {
  const res = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: server.app.scheduler.model!.id, max_tokens: 12, stream: true, temperature: 0, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [question] }) });
  const deltas = (await res.text())
    .split('\n\n')
    .filter((f) => f.startsWith('event: content_block_'))
    .map((f) => JSON.parse(f.split('\n')[1].slice(6)) as { type: string; index: number; delta?: { type: string; signature?: string }; content_block?: { type: string } });
  assert.equal(deltas[0].content_block?.type, 'thinking');
  const signature = deltas.find((d) => d.delta?.type === 'signature_delta');
  assert.ok(signature && signature.index === 0 && (signature.delta?.signature ?? '').length > 40);
  assert.ok(deltas.filter((d) => d.index === 0).every((d) => d.type !== 'content_block_delta' || d.delta?.type === 'thinking_delta' || d.delta?.type === 'signature_delta'));
});

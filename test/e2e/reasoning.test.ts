import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { thinkModelPath } from '../helpers/testModel.js';

// The tiny-think model's template opens a thought in its generation prompt (Qwen3-Thinking style),
// so every response starts with reasoning.
let server: TestServer;
let model: string;

before(async () => {
  server = await startServer({ FLINT_MODEL: await thinkModelPath(), FLINT_CONTEXT_SIZE: '2048' });
  model = server.app.scheduler.model!.id;
});
after(() => server.close());

interface Item {
  type: string;
  id: string;
  encrypted_content?: string | null;
  content?: Array<{ type: string; text: string }>;
}
interface Body {
  status: string;
  output: Item[];
  usage: { input_tokens: number; output_tokens: number; input_tokens_details: { cached_tokens: number }; output_tokens_details: { reasoning_tokens: number } };
}

async function create(body: Record<string, unknown>): Promise<Body> {
  const res = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, ...body }) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Body;
}

const question = [{ type: 'message', role: 'user', content: 'why is the sky blue?' }];

test('thoughts stream as a reasoning item; with include, it carries sealed content that re-renders as the cached prefix', async () => {
  const events: string[] = [];
  const res = await fetch(`${server.url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, input: question, stream: true, max_output_tokens: 12, temperature: 0, include: ['reasoning.encrypted_content'], reasoning: { summary: 'auto' } }),
  });
  for (const line of (await res.text()).split('\n')) if (line.startsWith('event: ')) events.push(line.slice(7));
  assert.deepEqual(events.slice(0, 5), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added', 'response.reasoning_text.delta']);
  assert.ok(events.includes('response.reasoning_text.done'));

  const first = await create({ input: question, max_output_tokens: 12, temperature: 0, include: ['reasoning.encrypted_content'], store: false });
  const reasoning = first.output.find((o) => o.type === 'reasoning')!;
  assert.ok(reasoning.content![0].text.length > 0);
  assert.ok(typeof reasoning.encrypted_content === 'string' && reasoning.encrypted_content.length > 40);
  assert.equal(first.usage.output_tokens_details.reasoning_tokens, first.usage.output_tokens);

  const next = [{ type: 'message', role: 'user', content: 'and at sunset?' }];
  // The same conversation with the reasoning item sent back, and without it (the thought is then gone from the prompt).
  const withItem = await create({ input: [...question, reasoning, ...first.output.filter((o) => o.type !== 'reasoning'), ...next], max_output_tokens: 2, store: false });
  const withoutItem = await create({ input: [...question, ...next], max_output_tokens: 2, store: false });
  assert.ok(withItem.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens, `cached ${withItem.usage.input_tokens_details.cached_tokens} < first prompt ${first.usage.input_tokens}`);
  assert.ok(withItem.usage.input_tokens > withoutItem.usage.input_tokens, 'the thought is rendered back into the prompt');
});

test('without include the item has no sealed content; a reasoning item Flint cannot open is dropped, not an error', async () => {
  const plain = await create({ input: question, max_output_tokens: 6 });
  assert.equal(plain.output.find((o) => o.type === 'reasoning')!.encrypted_content, null);
  const forged = await create({ input: [...question, { type: 'reasoning', id: 'rs_x', summary: [], encrypted_content: 'bm90IGEgc2VhbA' }, { role: 'user', content: 'go on' }], max_output_tokens: 2 });
  assert.ok(['completed', 'incomplete'].includes(forged.status));
});

test('compaction: /v1/responses/compact and compaction_trigger return one sealed compaction item that later turns render', async () => {
  const conversation = [...question, { role: 'assistant', content: 'Rayleigh scattering.' }, { role: 'user', content: 'thanks' }];
  const res = await fetch(`${server.url}/v1/responses/compact`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, input: conversation, max_output_tokens: 48 }) });
  assert.equal(res.status, 200);
  const compacted = (await res.json()) as { object: string; output: Item[] };
  assert.equal(compacted.object, 'response.compaction');
  const items = compacted.output.filter((o) => o.type === 'compaction');
  assert.equal(items.length, 1);
  assert.deepEqual(compacted.output.filter((o) => o.type === 'message').length, 2, 'the user messages are kept');

  const trigger = await create({ input: [...conversation, { type: 'compaction_trigger' }], store: false, max_output_tokens: 48 });
  assert.deepEqual(trigger.output.map((o) => o.type), ['compaction']);
  assert.equal(trigger.status, 'completed');

  // A later turn on the compacted window: the summary is rendered as a user message (more prompt than the new message alone).
  const after = await create({ input: [items[0], { role: 'user', content: 'next' }], max_output_tokens: 2, store: false });
  const alone = await create({ input: [{ role: 'user', content: 'next' }], max_output_tokens: 2, store: false });
  assert.ok(after.usage.input_tokens > alone.usage.input_tokens + 5);
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
before(async () => {
  // One slot, so every conversation competes for it and eviction, saving and restoring are exercised.
  server = await startServer({ FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '2048' }, 'engine:\n  minSavedPrefixTokens: 16\n');
});
after(() => server?.close());

const system = 'You are Flint, a careful coding assistant. Answer with code only.\n' + 'export function helper(value: number): number { return value * 2; }\n'.repeat(12);

async function ask(messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>) {
  const res = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages, max_tokens: 16, temperature: 0 });
  return { text: res.choices[0].message.content ?? '', usage: res.usage! };
}

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('a repeated prompt reuses its whole prefix and generates exactly the same text', async () => {
  const messages = [
    { role: 'system' as const, content: system },
    { role: 'user' as const, content: 'Write a function that sums an array.' },
  ];
  const cold = await ask(messages);
  const warm = await ask(messages);
  assert.equal(warm.text, cold.text, 'prefix reuse must not change the output');
  assert.equal(warm.usage.prompt_tokens, cold.usage.prompt_tokens);
  assert.equal(warm.usage.prompt_tokens_details?.cached_tokens, warm.usage.prompt_tokens - 1, 'all but the last prompt token came from the cache');

  // The next turn of the same conversation evaluates only what is new.
  const next = await ask([...messages, { role: 'assistant', content: cold.text }, { role: 'user', content: 'Now make it generic.' }]);
  assert.ok(next.usage.prompt_tokens_details!.cached_tokens! >= cold.usage.prompt_tokens - 2, `cached ${next.usage.prompt_tokens_details?.cached_tokens} of ${next.usage.prompt_tokens}`);
});

test('an evicted conversation is saved in host memory and restored, with identical output', async () => {
  const a = [
    { role: 'system' as const, content: system },
    { role: 'user' as const, content: 'Conversation A: parse a CSV line.' },
  ];
  const b = [
    { role: 'system' as const, content: 'A different assistant entirely. ' + 'let other = compute(1, 2, 3);\n'.repeat(10) },
    { role: 'user' as const, content: 'Conversation B.' },
  ];
  const first = await ask(a);
  const hitsBefore = await metric('flint_prompt_cache_requests_total', '{result="hit",reason="saved_prefix"}');
  await ask(b); // takes over the only slot; A's state is saved
  assert.ok((await metric('flint_saved_prefix_bytes', '{worker="0"}')) > 0, 'A is held in saved prefixes');
  const again = await ask(a); // A returns: restored instead of recomputed
  assert.equal(again.text, first.text, 'a restored state must generate exactly what the original did');
  assert.ok(again.usage.prompt_tokens_details!.cached_tokens! >= first.usage.prompt_tokens - 1);
  assert.equal(await metric('flint_prompt_cache_requests_total', '{result="hit",reason="saved_prefix"}'), hitsBefore + 1);
  assert.ok((await metric('flint_prompt_tokens_restored_total')) >= first.usage.prompt_tokens - 1);
});

test('a prompt that only shares a prefix with a saved state never reuses more than that prefix', async () => {
  const c = [{ role: 'user' as const, content: system + 'Variant one of the question.' }];
  const d = [{ role: 'user' as const, content: system + 'A completely different ending!' }];
  const cold = await ask(d);
  await ask(c);
  const viaCache = await ask(d);
  assert.equal(viaCache.text, cold.text);
  assert.ok(viaCache.usage.prompt_tokens_details!.cached_tokens! < viaCache.usage.prompt_tokens);
});

test('a slot idle for saveIdleSlotsAfterMs is saved ahead of time: the request that evicts it does not wait for the copy', async () => {
  const c = [
    { role: 'system' as const, content: system },
    { role: 'user' as const, content: 'Conversation C: reverse a linked list.' },
  ];
  const d = [
    { role: 'system' as const, content: 'Yet another assistant. ' + 'const value = read(4, 5);\n'.repeat(10) },
    { role: 'user' as const, content: 'Conversation D.' },
  ];
  const first = await ask(c); // evicts what the test before left
  const idleBefore = await metric('flint_evicted_prefix_saves_total', '{kind="idle"}');
  const criticalBefore = await metric('flint_evicted_prefix_saves_total', '{kind="critical"}');
  // The server's saveIdleSlotsAfterMs is 250 ms: wait well past it.
  await new Promise((resolve) => setTimeout(resolve, 800));
  await ask(d); // evicts C, which was saved while the slot was idle
  assert.equal(await metric('flint_evicted_prefix_saves_total', '{kind="idle"}'), idleBefore + 1);
  assert.equal(await metric('flint_evicted_prefix_saves_total', '{kind="critical"}'), criticalBefore);
  const again = await ask(c); // back from the idle save, D evicted right away (saved on the critical path)
  assert.equal(again.text, first.text, 'the state saved while idle restores to the same output');
  assert.ok(again.usage.prompt_tokens_details!.cached_tokens! >= first.usage.prompt_tokens - 1);
  assert.equal(await metric('flint_evicted_prefix_saves_total', '{kind="critical"}'), criticalBefore + 1);
});

/**
 * The `ollama` JavaScript client (pinned in scripts/installClients.ts, loaded from .clients/)
 * against a spawned Flint: version, list, show and ps as editors call them to find the model;
 * chat streamed and not, two turns of one conversation (the second's cached share read from
 * Flint's metrics: Ollama's API has no cached-token field); generate with a suffix (FIM).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientVersion, loadClient, longInstructions, Report, scrapeMetrics, startFlint, withDeadline, type Flint } from './support.js';
import { valueOf } from '../helpers/promText.js';

const report = new Report('ollama');
let flint: Flint;
let client: any;
let version = '';

before(async () => {
  flint = await startFlint({ contextSize: 8192 });
  const sdk = await loadClient<{ Ollama: new (o: Record<string, unknown>) => any }>('ollama');
  version = clientVersion('ollama');
  client = new sdk.Ollama({ host: flint.url });
});

after(async () => {
  report.write();
  await flint?.stop();
});

test(`ollama client: the model is found as editors look for it`, async () => {
  const name = `${flint.modelId}:latest`;
  assert.match((await client.version()).version, /^\d+\.\d+\.\d+$/);
  const list = await client.list();
  assert.deepEqual(list.models.map((m: { name: string }) => m.name), [name]);
  const show = await client.show({ model: name });
  assert.ok(show.capabilities.includes('completion') && show.capabilities.includes('tools'));
  assert.equal(show.model_info[`${show.details.family}.context_length`], 8192);
  const ps = await client.ps();
  assert.equal(ps.models[0].name, name);
});

test(`ollama client: chat, streamed then not, two turns, the second from the cache`, async () => {
  const entry = report.entry(`ollama ${version}`, 'chat (NDJSON stream, then stream: false)');
  const model = `${flint.modelId}:latest`;
  const messages = [
    { role: 'system', content: longInstructions },
    { role: 'user', content: 'Name a sorting algorithm.' },
  ];
  const started = Date.now();
  let text = '';
  let last: any;
  await withDeadline('streamed chat', 60_000, async () => {
    for await (const part of await client.chat({ model, messages, stream: true, options: { num_predict: 8, temperature: 0 } })) {
      if (text === '' && part.message.content) entry.ttftMs.push(Date.now() - started);
      text += part.message.content;
      last = part;
    }
  });
  entry.turnMs.push(Date.now() - started);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 8);
  entry.turns++;
  entry.firstPromptTokens = last.prompt_eval_count;

  const before = await scrapeMetrics(flint.url);
  const second = await client.chat({ model, stream: false, messages: [...messages, { role: 'assistant', content: text }, { role: 'user', content: 'Another one.' }], options: { num_predict: 4 } });
  const after = await scrapeMetrics(flint.url);
  assert.equal(second.done, true);
  entry.turns++;
  const cached = valueOf(after, 'flint_prompt_tokens_cached_total') - valueOf(before, 'flint_prompt_tokens_cached_total');
  entry.cachedShareOfSecondPrompt = cached / last.prompt_eval_count;
  assert.ok(entry.cachedShareOfSecondPrompt >= 0.9, `second turn: ${cached} cached tokens, the first prompt had ${last.prompt_eval_count}`);
});

test(`ollama client: generate with a suffix fills in the middle`, async () => {
  const result = await client.generate({ model: `${flint.modelId}:latest`, prompt: 'function add(a, b) {\n  return ', suffix: ';\n}\n', stream: false, options: { num_predict: 4 } });
  assert.equal(result.done, true);
  assert.equal(result.eval_count, 4);
  assert.equal(typeof result.response, 'string');
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

// llama.cpp's /infill as llama.vscode calls it: the request bodies below have the shape its
// src/llama-server.ts builds (defaults, the ring-buffer warm-up with n_predict 0, chunks with a
// full path as filename and text ending in a newline).
let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '4096' });
});
after(() => server?.close());

const vscodeDefaults = { top_k: 40, top_p: 0.99, samplers: ['top_k', 'top_p', 'infill'], cache_prompt: true };
const chunks = [
  { text: 'export function clamp(value: number, low: number, high: number): number {\n  return Math.min(high, Math.max(low, value));\n}\n'.repeat(6), time: 1733140000000, filename: '/home/dev/repo/src/math.ts' },
  { text: 'import { clamp } from "./math";\nexport const limits = { low: 0, high: 100 };\n'.repeat(6), time: 1733140001000, filename: '/home/dev/repo/src/limits.ts' },
];
const fileLines = Array.from({ length: 24 }, (_, i) => `  const value${i} = clamp(input[${i}], limits.low, limits.high);\n`);

async function infill(body: Record<string, unknown>) {
  const res = await fetch(`${server.url}/infill`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

function completion(prefixLines: readonly string[], prompt: string) {
  return {
    id_slot: 0,
    input_prefix: `export function normalize(input: number[]) {\n${prefixLines.join('')}`,
    input_suffix: '\n  return input;\n}\n',
    input_extra: chunks,
    prompt,
    n_predict: 8,
    n_cmpl: 3,
    ...vscodeDefaults,
    stream: false,
    t_max_prompt_ms: 500,
    t_max_predict_ms: 500,
    temperature: 0,
  };
}

test('the ring-buffer warm-up caches the extra context, and a completion after a one-line edit evaluates only the changed tail', async (t) => {
  // llama.vscode's warm-up: only the extra chunks, nothing to generate.
  const warmup = await infill({ id_slot: 0, input_prefix: '', input_suffix: '', input_extra: chunks, prompt: '', n_predict: 0, samplers: [], cache_prompt: true, t_max_prompt_ms: 500, t_max_predict_ms: 1 });
  assert.equal(warmup.status, 200);
  assert.equal(warmup.body.content, '');
  assert.equal(warmup.body.tokens_predicted, 0);
  const extraTokens = warmup.body.tokens_evaluated as number;

  const first = await infill(completion(fileLines, '  const next = '));
  assert.equal(first.status, 200);
  assert.equal(typeof first.body.content, 'string');
  // The extra context comes first in the prompt: all of it was already in the cache.
  assert.ok(first.body.timings.cache_n >= extraTokens - 8, `cached ${first.body.timings.cache_n} of ${extraTokens} extra-context tokens`);

  // The user edits the last line before the cursor and asks again.
  const edited = [...fileLines.slice(0, -1), '  const value23 = clamp(input[23], 0, 1);\n'];
  const second = await infill(completion(edited, '  const next = '));
  assert.equal(second.status, 200);
  const { cache_n: cached, prompt_n: evaluated } = second.body.timings;
  assert.equal(cached + evaluated, second.body.tokens_evaluated);
  // Only the edited line, the prompt and the suffix are evaluated again.
  assert.ok(evaluated <= 40, `evaluated ${evaluated} of ${second.body.tokens_evaluated} prompt tokens`);
  assert.ok(cached >= second.body.tokens_evaluated - 40);
  t.diagnostic(`warm-up: ${extraTokens} tokens; first completion: ${first.body.timings.cache_n} of ${first.body.tokens_evaluated} cached; after the edit: ${cached} of ${second.body.tokens_evaluated} cached, ${evaluated} evaluated`);
  for (const field of ['index', 'content', 'tokens', 'id_slot', 'stop', 'model', 'tokens_predicted', 'tokens_evaluated', 'generation_settings', 'prompt', 'has_new_line', 'truncated', 'stop_type', 'stopping_word', 'tokens_cached', 'timings']) {
    assert.ok(Object.hasOwn(second.body, field), `response has ${field}`);
  }
  assert.equal(second.body.stop, true);
  assert.equal(second.body.generation_settings.n_ctx, 4096);
});

test('streaming: content chunks with stop false, then the final object with stop true, and no [DONE]', async () => {
  const res = await fetch(`${server.url}/infill`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...completion(fileLines, ''), stream: true, n_predict: 6 }) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  assert.ok(!text.includes('[DONE]'));
  const events = text
    .split('\n\n')
    .filter((frame) => frame.startsWith('data: '))
    .map((frame) => JSON.parse(frame.slice(6)) as Record<string, any>);
  const last = events.at(-1)!;
  assert.equal(last.stop, true);
  assert.equal(last.tokens_predicted, 6);
  assert.equal(last.stop_type, 'limit');
  const chunksSeen = events.slice(0, -1);
  assert.ok(chunksSeen.length >= 1 && chunksSeen.every((e) => e.stop === false && typeof e.content === 'string'));
  assert.equal(chunksSeen.at(-1)!.tokens_predicted, 6);
});

test('response_fields returns only those paths, as flat keys', async () => {
  const { status, body } = await infill({ ...completion(fileLines, ''), n_predict: 2, response_fields: ['content', 'timings/prompt_n', 'timings/predicted_ms', 'truncated', 'tokens_cached', 'no/such'] });
  assert.equal(status, 200);
  assert.deepEqual(Object.keys(body).sort(), ['content', 'timings/predicted_ms', 'timings/prompt_n', 'tokens_cached', 'truncated']);
});

test('a prefix longer than the batch is cut to its end, as llama-server cuts it, and says so', async () => {
  const long = Array.from({ length: 400 }, (_, i) => `  total += weights[${i}] * values[${i}];\n`);
  const { status, body } = await infill({ ...completion(long, ''), input_extra: [], n_predict: 2 });
  assert.equal(status, 200);
  assert.equal(body.truncated, true);
  // The repo header, at most 3/4 of a 512-token batch of prefix, the suffix and the FIM tokens.
  assert.ok(body.tokens_evaluated <= 512, `prompt of ${body.tokens_evaluated} tokens`);
});

test('bad bodies get a 400 with the error envelope, the server serves on, and requests count under api="infill"', async () => {
  const before = await fetch(`${server.url}/metrics`).then((r) => r.text());
  const count = (text: string, status: string) => Number(text.split('\n').find((l) => l.startsWith(`flint_requests_total{api="infill",status="${status}"`))?.split(' ').at(-1) ?? 0);
  for (const body of [{ input_extra: [{ filename: 'a.ts' }] }, { input_extra: 'not a list' }, { n_predict: -5 }, { input_prefix: 3 }]) {
    const res = await infill(body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(typeof res.body.error?.message, 'string');
  }
  const ok = await infill({ input_prefix: 'let a = ', input_suffix: ';\n', n_predict: 2 });
  assert.equal(ok.status, 200);
  const after = await fetch(`${server.url}/metrics`).then((r) => r.text());
  assert.equal(count(after, '400') - count(before, '400'), 4);
  assert.equal(count(after, '200') - count(before, '200'), 1);
});

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { APIError } from 'openai';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { parsePromText, valueOf, type Exposition } from '../helpers/promText.js';
import { responseOf, WsSession } from '../helpers/wsSession.js';

let server: TestServer;
let model: string;
before(async () => {
  server = await startServer({ FLINT_SLOTS: '2' });
  model = server.app.scheduler.model!.id;
});
after(() => server?.close());

async function scrape(): Promise<Exposition> {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return parsePromText(await res.text());
}

describe('metrics move exactly with known requests', () => {
  test('chat requests: counts, tokens, latency histograms, cache results', async () => {
    const before = await scrape();
    const usages = [];
    for (const content of ['first question', 'second question']) {
      const res = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content }], max_tokens: 4, temperature: 0 });
      usages.push(res.usage!);
    }
    const stream = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'first question' }], max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) if (chunk.usage) usages.push(chunk.usage);
    await assert.rejects(server.client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), APIError);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);

    assert.equal(delta('flint_requests_total', { api: 'chat', status: '200', outcome: 'ok' }), 3);
    assert.equal(delta('flint_requests_total', { api: 'chat', status: '404', outcome: 'error' }), 1);
    assert.equal(delta('flint_prompt_tokens_total'), usages.reduce((n, u) => n + u.prompt_tokens, 0));
    assert.equal(delta('flint_generated_tokens_total'), usages.reduce((n, u) => n + u.completion_tokens, 0));
    assert.equal(delta('flint_prompt_tokens_cached_total'), usages.reduce((n, u) => n + (u.prompt_tokens_details?.cached_tokens ?? 0), 0));
    assert.ok(usages[2].prompt_tokens_details!.cached_tokens! > 0, 'the repeated prompt was a cache hit');
    for (const histogram of ['flint_time_to_first_token_seconds', 'flint_inter_token_latency_seconds']) {
      assert.equal(delta(`${histogram}_count`, { api: 'chat' }), 3, histogram);
    }
    assert.equal(delta('flint_request_duration_seconds_count', { api: 'chat' }), 4, 'every request has a duration, the refused one too');
    for (const histogram of ['flint_queue_wait_seconds', 'flint_prefill_seconds', 'flint_decode_seconds', 'flint_prompt_tokens']) {
      assert.equal(delta(`${histogram}_count`), 3, histogram);
    }
    assert.equal(delta('flint_prompt_cache_requests_total'), 3);
    assert.equal(delta('flint_prompt_cache_requests_total', { result: 'hit' }), 1);
    assert.equal(delta('flint_slot_routes_total'), 3);
    // Gauges are back at their idle values.
    assert.equal(valueOf(after, 'flint_slots_busy'), 0);
    assert.equal(valueOf(after, 'flint_slots_total'), 2);
    assert.equal(valueOf(after, 'flint_queue_depth'), 0);
    assert.equal(valueOf(after, 'flint_workers_up'), 1);
    assert.equal(valueOf(after, 'flint_worker_up', { worker: '0' }), 1);
    assert.equal(valueOf(after, 'flint_model_info', { model }), 1);
  });

  test('responses over HTTP and WebSocket: per-api counts, sessions, turns, stored responses', async () => {
    const before = await scrape();
    await server.client.responses.create({ model, input: 'stored', max_output_tokens: 2 });
    const session = new WsSession(server.client);
    const first = responseOf(await session.turn({ model, store: false, input: 'one', max_output_tokens: 2 }));
    await session.turn({ model, store: false, previous_response_id: first.id, input: 'two', max_output_tokens: 2 });
    const during = await scrape();
    assert.equal(valueOf(during, 'flint_websocket_sessions_open'), 1);
    session.close();
    const deadline = Date.now() + 10_000;
    let after = await scrape();
    while (valueOf(after, 'flint_websocket_sessions_open') !== 0 && Date.now() < deadline) after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('flint_requests_total', { api: 'responses', outcome: 'ok' }), 1);
    assert.equal(delta('flint_requests_total', { api: 'responses_ws', outcome: 'ok' }), 2);
    assert.equal(delta('flint_websocket_sessions_total'), 1);
    assert.equal(valueOf(after, 'flint_websocket_sessions_open'), 0);
    assert.equal(delta('flint_websocket_turns_per_session_count'), 1);
    assert.equal(delta('flint_websocket_turns_per_session_sum'), 2);
    assert.equal(delta('flint_websocket_turn_time_to_first_token_seconds_count'), 2);
    assert.ok(valueOf(after, 'flint_stored_responses') >= 1);
  });

  test('the whole exposition is valid text format with flint_ names, low-cardinality labels and default process metrics', async () => {
    const exposition = await scrape();
    const families = [...exposition.types.keys()];
    assert.ok(families.every((f) => f.startsWith('flint_')), 'every family has the flint_ prefix');
    for (const required of ['flint_process_resident_memory_bytes', 'flint_nodejs_eventloop_lag_seconds', 'flint_queue_limit', 'flint_saved_prefix_limit_bytes', 'flint_worker_threads']) {
      assert.ok(families.includes(required), required);
    }
    const allowedLabels = new Set(['api', 'phase', 'status', 'outcome', 'worker', 'result', 'reason', 'route', 'le', 'model', 'architecture', 'context_size', 'quantile', 'version', 'major', 'minor', 'patch', 'type', 'space', 'kind']);
    for (const s of exposition.samples) for (const label of Object.keys(s.labels)) assert.ok(allowedLabels.has(label), `${s.name} has label ${label}`);
    const bucketBounds = exposition.samples.filter((s) => s.name === 'flint_time_to_first_token_seconds_bucket').map((s) => Number(s.labels.le));
    assert.ok(bucketBounds.includes(0.0005) && bucketBounds.includes(30), 'TTFT buckets resolve 0.5 ms to tens of seconds');
  });
});

describe('metrics access', () => {
  test('/metrics behind its own token, and on a separate port', async (t) => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const metricsPort = (probe.address() as { port: number }).port;
    probe.close();
    const guarded = await startServer({ FLINT_API_KEYS: 'api-key' }, `metrics:\n  token: scrape-secret\n  port: ${metricsPort}\n`);
    t.after(() => guarded.close());
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    // With a token, /metrics ignores API keys and wants the token; it is not on the API port at all.
    assert.equal((await fetch(metricsUrl, { headers: { authorization: 'Bearer api-key' } })).status, 401);
    const ok = await fetch(metricsUrl, { headers: { authorization: 'Bearer scrape-secret' } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^flint_workers_up 1$/m);
    assert.equal((await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer api-key' } })).status, 404);
  });

  test('the parser rejects duplicate series and bad names', () => {
    assert.throws(() => parsePromText('# TYPE a counter\na 1\na 2\n'), /duplicate series/);
    assert.throws(() => parsePromText('1bad 1\n'), /bad sample/);
    assert.throws(() => parsePromText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 0\n'), /cumulative/);
  });
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';

// What a balancer in front of replicas reads: the node's name on every answer (the WebSocket
// 101 included) and the load gauges, also under vLLM's names when asked.
let server: TestServer;

before(async () => {
  server = await startServer({ FLINT_SLOTS: '2' }, 'server:\n  replicaId: node-a\nmetrics:\n  vllmAliases: true\n');
});
after(() => server.close());

test('x-flint-replica names the node on JSON, SSE, errors and the WebSocket handshake', async () => {
  const model = server.app.scheduler.model!.id;
  const json = await fetch(`${server.url}/v1/models`);
  assert.equal(json.headers.get('x-flint-replica'), 'node-a');
  const sse = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, stream: true }) });
  assert.equal(sse.headers.get('x-flint-replica'), 'node-a');
  await sse.text();
  const error = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
  assert.equal(error.status, 400);
  assert.equal(error.headers.get('x-flint-replica'), 'node-a');
  const header = await new Promise<string | undefined>((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/responses`);
    ws.once('upgrade', (res) => resolve(res.headers['x-flint-replica'] as string | undefined));
    ws.once('open', () => ws.close());
    ws.once('error', reject);
  });
  assert.equal(header, 'node-a');
});

test('load gauges: waiting, running and KV use, as flint_* and as vllm:*', async () => {
  const model = server.app.scheduler.model!.id;
  const body = (content: string) => JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: 400, stream: true });
  const streams = ['a', 'b', 'c'].map((c) => fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(c) }));
  // Two slots run, the third request waits (its answer stays open until it gets a slot).
  let text = '';
  for (let i = 0; i < 200; i++) {
    text = await (await fetch(`${server.url}/metrics`)).text();
    if (/^flint_requests_waiting 1$/m.test(text) && /^flint_requests_running 2$/m.test(text)) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.match(text, /^flint_requests_waiting 1$/m);
  assert.match(text, /^flint_requests_running 2$/m);
  assert.match(text, /^vllm:num_requests_waiting 1$/m);
  assert.match(text, /^vllm:num_requests_running 2$/m);
  for (const res of await Promise.all(streams)) await res.text();
  const after = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(after, /^flint_requests_running 0$/m);
  const usage = Number(/^flint_kv_cache_usage_ratio (\S+)$/m.exec(after)?.[1]);
  assert.ok(usage > 0 && usage <= 1, `KV use ${usage}`);
  assert.equal(Number(/^vllm:gpu_cache_usage_perc (\S+)$/m.exec(after)?.[1]), usage);
});

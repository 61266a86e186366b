import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_API_KEYS: 'sekret-key' });
});
after(() => server?.close());

test('/health and /ready answer without a key; /ready is 200 once the model is loaded', async () => {
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  const ready = await fetch(`${server.url}/ready`);
  assert.equal(ready.status, 200);
  assert.equal(((await ready.json()) as { status: string }).status, 'ready');
});

test('/v1/models lists the served model with its context length', async () => {
  const list = await server.client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.deepEqual(ids, [server.app.scheduler.model!.id]);
  assert.equal((list.data[0] as unknown as { context_length: number }).context_length, 1024);
  const one = await server.client.models.retrieve(ids[0]);
  assert.equal(one.id, ids[0]);
});

test('API routes refuse a missing or wrong key with 401 invalid_api_key', async () => {
  for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
    const res = await fetch(`${server.url}/v1/models`, { headers });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'invalid_api_key');
  }
  const ok = await fetch(`${server.url}/v1/models`, { headers: { 'api-key': 'sekret-key' } });
  assert.equal(ok.status, 200);
});

test('/metrics exposes flint_ metrics in Prometheus text format', async () => {
  await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer sekret-key' } });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^flint_requests_total\{api="chat",status="200",outcome="ok"\} 1$/m);
  assert.match(text, /^flint_slots_total\{worker="0"\} 2$/m);
  assert.match(text, /^flint_slots_busy\{worker="0"\} 0$/m);
});

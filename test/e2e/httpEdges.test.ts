import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { toModelSource } from '../../src/modelfiles/toModelSource.js';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

test('a known path with the wrong method is a 405 with Allow, in the OpenAI envelope; unknown paths stay 404', async () => {
  const wrong = await fetch(`${server.url}/v1/chat/completions`, { method: 'GET' });
  assert.equal(wrong.status, 405);
  assert.match(wrong.headers.get('allow') ?? '', /POST/);
  assert.equal(((await wrong.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
  const parametric = await fetch(`${server.url}/v1/responses/resp_x`, { method: 'PUT' });
  assert.equal(parametric.status, 405);
  assert.equal((await fetch(`${server.url}/v1/nothing-here`)).status, 404);
});

test('an oversized URI or header block gets the OpenAI envelope before any route runs', async () => {
  const url = new URL(server.url);
  const raw = await new Promise<string>((resolve) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(`GET /v1/models?${'a'.repeat(100_000)} HTTP/1.1\r\nhost: x\r\n\r\n`));
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  assert.match(raw, /^HTTP\/1\.1 4(14|31) /);
  assert.match(raw, /"error":\{"message":"[^"]+","type":"invalid_request_error"/);
});

test("hf: URIs cannot reach outside their repository", () => {
  assert.deepEqual(toModelSource('hf:owner/repo/model.gguf', []).repo, { id: 'owner/repo', revision: 'main' });
  for (const bad of ['hf:owner/repo/../other/model.gguf', 'hf:owner/../x/model.gguf', 'hf:owner/repo/a/%2e%2e/model.gguf', 'hf:owner/repo/model.gguf#../main']) {
    assert.throws(() => toModelSource(bad, []), /may not contain/, bad);
  }
});

test('seeds beyond 32 bits are a 400 naming seed; negative ones are accepted', async () => {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], seed: 2 ** 40, max_tokens: 1 }) });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { error: { param: string } }).error.param, 'seed');
  const negative = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'x' }], seed: -5, max_tokens: 1 });
  assert.equal(negative.object, 'chat.completion');
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

// Two keys, the second configured as its SHA-256 (keys need not sit in config files in clear).
const k1 = 'key-one-secret';
const k2 = 'key-two-secret';
let server: TestServer;

before(async () => {
  server = await startServer({ FLINT_API_KEYS: `${k1},sha256:${createHash('sha256').update(k2).digest('hex')}` });
});
after(() => server.close());

const call = (key: string, method: string, path: string, body?: unknown, scheme = 'Bearer') =>
  fetch(`${server.url}${path}`, { method, headers: { authorization: `${scheme} ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });

test('a stored response belongs to the key that made it: other keys get 404 and cannot continue it', async () => {
  const created = (await (await call(k1, 'POST', '/v1/responses', { input: 'secret plans', max_output_tokens: 2 })).json()) as { id: string };
  assert.equal((await call(k1, 'GET', `/v1/responses/${created.id}`)).status, 200);
  assert.equal((await call(k2, 'GET', `/v1/responses/${created.id}`)).status, 404);
  assert.equal((await call(k2, 'GET', `/v1/responses/${created.id}/input_items`)).status, 404);
  assert.equal((await call(k2, 'POST', `/v1/responses/${created.id}/cancel`)).status, 404);
  const continued = await call(k2, 'POST', '/v1/responses', { input: 'more', previous_response_id: created.id, max_output_tokens: 2 });
  assert.equal(((await continued.json()) as { error: { code: string } }).error.code, 'previous_response_not_found');
  assert.equal((await call(k2, 'DELETE', `/v1/responses/${created.id}`)).status, 404);
  assert.equal((await call(k1, 'GET', `/v1/responses/${created.id}`)).status, 200, 'still there after the other key tried to delete it');
  assert.equal((await call(k1, 'DELETE', `/v1/responses/${created.id}`)).status, 200);
});

test("another key cannot cancel a running stream", async () => {
  const res = await call(k1, 'POST', '/v1/responses', { input: 'long', max_output_tokens: 3000, stream: true });
  const reader = res.body!.getReader();
  let text = '';
  while (!/"id":"(resp_[^"]+)"/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  const id = /"id":"(resp_[^"]+)"/.exec(text)![1];
  assert.equal((await call(k2, 'POST', `/v1/responses/${id}/cancel`)).status, 404);
  assert.equal((await call(k1, 'POST', `/v1/responses/${id}/cancel`)).status, 200);
  await reader.cancel();
});

test('the bearer scheme is case-insensitive and tolerates spacing; a hashed key works; a wrong key does not', async () => {
  assert.equal((await call(k1, 'GET', '/v1/models', undefined, 'bearer')).status, 200);
  assert.equal((await call(k1, 'GET', '/v1/models', undefined, 'BEARER  ')).status, 200);
  assert.equal((await call(k2, 'GET', '/v1/models')).status, 200);
  assert.equal((await call('sha256:' + createHash('sha256').update(k2).digest('hex'), 'GET', '/v1/models')).status, 401, 'the hash itself is no key');
  assert.equal((await call('nope', 'GET', '/v1/models')).status, 401);
});

test('WebSocket sockets per key count the resolved key, not the raw header; without keys, per address', async () => {
  const { default: WebSocket } = await import('ws');
  const open = (url: string, headers: Record<string, string>) =>
    new Promise<{ ws: InstanceType<typeof WebSocket> | undefined; status: number }>((resolve) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => resolve({ ws, status: 101 }));
      ws.once('unexpected-response', (_req, res) => resolve({ ws: undefined, status: res.statusCode ?? 0 }));
    });
  await using keyed = await startServer({ FLINT_API_KEYS: k1 }, 'websocket:\n  maxSocketsPerKey: 1\n');
  const url = `${keyed.url.replace('http', 'ws')}/v1/responses`;
  const first = await open(url, { authorization: `Bearer ${k1}` });
  assert.equal(first.status, 101);
  assert.equal((await open(url, { authorization: `bearer   ${k1}` })).status, 429);
  first.ws!.close();

  await using open_ = await startServer({}, 'websocket:\n  maxSocketsPerKey: 1\n');
  const openUrl = `${open_.url.replace('http', 'ws')}/v1/responses`;
  const a = await open(openUrl, { authorization: 'Bearer random-1' });
  assert.equal(a.status, 101);
  assert.equal((await open(openUrl, { authorization: 'Bearer random-2' })).status, 429, 'a made-up header is no fresh bucket');
  a.ws!.close();
});

test('the prompt cache is scoped per key: another key guessing a prefix learns nothing from cached_tokens', async () => {
  const secret = 'System: the launch code is 7731-alpha-zulu. Never reveal it. '.repeat(6);
  const ask = async (key: string, target = server) => {
    const res = await fetch(`${target.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'system', content: secret }, { role: 'user', content: 'hi' }], max_tokens: 1 }),
    });
    return ((await res.json()) as { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } }).usage;
  };
  // One slot, so the second key's request lands where the first key's prompt is held.
  await using scoped = await startServer({ FLINT_API_KEYS: `${k1},${k2}`, FLINT_SLOTS: '1' });
  const first = await ask(k1, scoped);
  assert.ok((await ask(k1, scoped)).prompt_tokens_details.cached_tokens >= first.prompt_tokens - 1, 'the same key hits its cache');
  assert.equal((await ask(k2, scoped)).prompt_tokens_details.cached_tokens, 0, 'another key does not');
  assert.ok((await ask(k1, scoped)).prompt_tokens_details.cached_tokens >= first.prompt_tokens - 1, "the first key's prefix comes back from its saved state");

  await using shared = await startServer({ FLINT_API_KEYS: `${k1},${k2}`, FLINT_SLOTS: '1' }, 'cache:\n  scope: shared\n');
  const sharedFirst = await ask(k1, shared);
  assert.ok((await ask(k2, shared)).prompt_tokens_details.cached_tokens >= sharedFirst.prompt_tokens - 1, 'scope: shared shares (documented side channel)');
});

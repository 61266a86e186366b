import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startServer } from '../helpers/startServer.js';

const json = { 'content-type': 'application/json' };

test('per-key request rate: over the burst a key gets 429 rate_limit_exceeded with Retry-After; another key is unaffected', async () => {
  await using server = await startServer({ FLINT_API_KEYS: 'a,b' }, 'limits:\n  requestsPerSecond: 1\n  burst: 3\n');
  const models = (key: string) => fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await models('a')).status);
  assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
  const limited = await models('a');
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'rate_limit_exceeded');
  assert.equal((await models('b')).status, 200);
});

test('per-key concurrent generations: one more than allowed is a 429 before any byte', async () => {
  await using server = await startServer({ FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '32768' }, 'limits:\n  concurrentGenerations: 1\n');
  const long = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: json, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 20000, stream: true }) });
  const reader = long.body!.getReader();
  await reader.read();
  const second = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: json, body: JSON.stringify({ messages: [{ role: 'user', content: 'y' }], max_tokens: 2 }) });
  assert.equal(second.status, 429);
  assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'rate_limit_exceeded');
  await reader.cancel();
});

test('engine.maxOutputTokens caps what a request may generate', async () => {
  await using server = await startServer({}, 'engine:\n  maxOutputTokens: 5\n');
  const res = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'x' }], max_tokens: 500, temperature: 1, seed: 1 });
  assert.ok(res.usage!.completion_tokens <= 5, `generated ${res.usage!.completion_tokens}`);
});

test('WebSocket frame rate: frames over the burst get 429 error events; the socket stays open', async () => {
  await using server = await startServer({}, 'websocket:\n  maxMessagesPerSecond: 1\n  maxMessagesBurst: 2\n');
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`);
  await new Promise((resolve) => ws.once('open', resolve));
  const events: Array<{ type: string; status?: number; error?: { code: string } }> = [];
  const got = new Promise<void>((resolve) =>
    ws.on('message', (data) => {
      events.push(JSON.parse(String(data)));
      if (events.length === 4) resolve();
    }),
  );
  for (let i = 0; i < 4; i++) ws.send('{"type":"nope"}');
  await got;
  assert.deepEqual(events.map((e) => e.error?.code), ['unknown_event_type', 'unknown_event_type', 'rate_limit_exceeded', 'rate_limit_exceeded']);
  assert.equal(ws.readyState, WebSocket.OPEN);
  ws.close();
});

test('connections per client address are bounded; the ones over it are closed at once', async () => {
  await using server = await startServer({}, 'server:\n  maxConnectionsPerIp: 3\n');
  const url = new URL(server.url);
  const sockets: Socket[] = [];
  const closedEarly: boolean[] = [];
  for (let i = 0; i < 5; i++) {
    const socket = connect(Number(url.port), url.hostname);
    sockets.push(socket);
    closedEarly.push(await new Promise<boolean>((resolve) => {
      socket.once('close', () => resolve(true));
      // An accepted connection answers a request; a refused one is closed before.
      socket.once('connect', () => socket.write('GET /health HTTP/1.1\r\nhost: x\r\n\r\n'));
      socket.once('data', () => resolve(false));
    }));
  }
  assert.deepEqual(closedEarly, [false, false, false, true, true]);
  for (const socket of sockets) socket.destroy();
});

test('CORS: listed origins get the headers and preflights; others get none and cannot open WebSockets', async () => {
  await using server = await startServer({}, 'server:\n  corsOrigins: ["https://app.example"]\n');
  const preflight = await fetch(`${server.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
  const other = await fetch(`${server.url}/v1/models`, { headers: { origin: 'https://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const status = (origin?: string) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`, origin ? { headers: { origin } } : {});
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    });
  assert.equal(await status('https://evil.example'), 403);
  assert.equal(await status('https://app.example'), 101);
  assert.equal(await status(), 101, 'non-browser clients send no Origin');
});

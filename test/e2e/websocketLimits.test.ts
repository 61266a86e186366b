import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { WsSession } from '../helpers/wsSession.js';

let server: TestServer;
before(async () => {
  server = await startServer({}, 'websocket:\n  maxSocketsPerKey: 2\n  maxLifetimeMs: 1500\n');
});
after(() => server?.close());

function open(): Promise<{ socket?: WebSocket; status?: number; retryAfter?: string }> {
  const socket = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`);
  return new Promise((resolve) => {
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (req, res) => {
      resolve({ status: res.statusCode, retryAfter: String(res.headers['retry-after']) });
      req.destroy();
    });
    socket.on('error', () => undefined);
  });
}

test('sockets per client are limited at the handshake with a 429 and Retry-After', async () => {
  const a = await open();
  const b = await open();
  assert.ok(a.socket && b.socket);
  const c = await open();
  assert.equal(c.status, 429);
  assert.ok(Number(c.retryAfter) >= 1);
  // (On a slow machine the server may already have closed it at its 1.5 s lifetime.)
  if (a.socket!.readyState !== WebSocket.CLOSED) {
    const closed = new Promise((resolve) => a.socket!.once('close', resolve));
    a.socket!.close();
    await closed;
  }
  // The slot in the per-client budget is returned once a socket closes.
  let d = await open();
  for (let i = 0; i < 50 && !d.socket; i++) d = await open();
  assert.ok(d.socket, 'a closed socket frees its place');
  // Wait for both closes: the next test's socket must not race them for the per-client budget.
  await Promise.all([b.socket!, d.socket!].map((socket) => (socket.readyState === WebSocket.CLOSED ? undefined : new Promise((resolve) => {
    socket.once('close', resolve);
    socket.close();
  }))));
});

test('at the lifetime limit the socket gets websocket_connection_limit_reached and closes with 1001', async () => {
  const session = new WsSession(server.client);
  const event = await session.next();
  assert.equal(event.type, 'error');
  assert.equal((event.error as { code: string }).code, 'websocket_connection_limit_reached');
  const deadline = Date.now() + 5_000;
  while (!session.closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(session.closed?.code, 1001);
});

test('a client that floods bad frames without reading the errors is cut off (1008), not buffered', { timeout: 60_000 }, async () => {
  await using tight = await startServer({}, 'websocket:\n  maxSendBufferBytes: 65536\n');
  const ws = new WebSocket(`${tight.url.replace('http', 'ws')}/v1/responses`);
  await new Promise((resolve) => ws.once('open', resolve));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.pause(); // read nothing: the server's error events pile up on its side
  for (let i = 0; i < 100_000 && ws.readyState === WebSocket.OPEN; i++) ws.send('x');
  ws.resume();
  assert.equal(await closed, 1008);
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';

// The console's routes and the API it uses, without a browser (test/browser/ drives a real one):
// its open static files, GET /v1/flint/status and WebSocket auth by subprotocol.
const keys = ['sk-console-a', 'sk-console-b'];
let server: TestServer;

before(async () => {
  server = await startServer({ FLINT_API_KEYS: keys.join(','), FLINT_SLOTS: '2' });
});
after(() => server.close());

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

function openSocket(protocols: string[], headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/responses`, protocols, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** One response on `ws`; resolves with its terminal event. */
function turn(ws: WebSocket, body: Record<string, unknown>): Promise<Record<string, any>> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const event = JSON.parse(data.toString());
      if (['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(event.type)) {
        ws.off('message', onMessage);
        resolve(event);
      }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ type: 'response.create', model: server.app.scheduler.model!.id, store: false, ...body }));
  });
}

describe('console pages', () => {
  test('/ and /console/ serve the page without a key, with a strict CSP; assets and redirect', async () => {
    for (const path of ['/', '/console/']) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/html/);
      assert.match(res.headers.get('content-security-policy')!, /default-src 'none'; script-src 'self'/);
      assert.match(await res.text(), /<title>Flint console<\/title>/);
    }
    const script = await fetch(`${server.url}/console/console.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type')!, /^text\/javascript/);
    const etag = script.headers.get('etag')!;
    assert.equal((await fetch(`${server.url}/console/console.js`, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal((await fetch(`${server.url}/console/console.css`)).status, 200);
    const redirect = await fetch(`${server.url}/console`, { redirect: 'manual' });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get('location'), '/console/');
    assert.equal((await fetch(`${server.url}/`, { method: 'HEAD' })).status, 200);
    // everything else still needs a key
    assert.equal((await fetch(`${server.url}/console/other.js`)).status, 401);
    assert.equal((await fetch(`${server.url}/v1/flint/status`)).status, 401);
  });

  test('console.enabled: false serves no page', async () => {
    const off = await startServer({}, 'console:\n  enabled: false\n');
    try {
      assert.equal((await fetch(`${off.url}/`)).status, 404);
      assert.equal((await fetch(`${off.url}/console/console.js`)).status, 404);
    } finally {
      await off.close();
    }
  });
});

describe('status and WebSocket auth for the console', () => {
  test('a browser-style socket: the key as a subprotocol, the same origin; the status shows whose session holds a slot', async () => {
    const origin = server.url;
    const ws = await openSocket(['flint', `flint-insecure-api-key.${keys[0]}`], { origin });
    try {
      assert.equal(ws.protocol, 'flint', 'the server picks the plain protocol, never echoes the key');
      const done = await turn(ws, { input: 'hello', max_output_tokens: 4 });
      assert.equal(done.type, 'response.incomplete');

      const mine = (await (await fetch(`${server.url}/v1/flint/status`, { headers: auth(keys[0]) })).json()) as any;
      assert.equal(mine.object, 'flint.status');
      assert.equal(mine.workers.length, 1);
      assert.equal(mine.workers[0].slots.length, 2);
      const held = mine.workers[0].slots.find((s: { pinned: string }) => s.pinned === 'yours');
      assert.ok(held, JSON.stringify(mine.workers));
      assert.match(held.session, /^wss_/);
      assert.ok(held.heldTokens >= done.response.usage.input_tokens);
      assert.equal(mine.queue.depth, 0);
      assert.equal(mine.sessions.open, 1);
      assert.ok(mine.cache.hits + mine.cache.misses >= 1);
      assert.ok(mine.latency.ttftMs.n >= 1 && mine.latency.ttftMs.p50 > 0);

      // Another key sees that a session holds the slot, not which.
      const theirs = (await (await fetch(`${server.url}/v1/flint/status`, { headers: auth(keys[1]) })).json()) as any;
      const other = theirs.workers[0].slots.find((s: { slot: number }) => s.slot === held.slot);
      assert.equal(other.pinned, 'other');
      assert.equal(other.session, undefined);
    } finally {
      ws.close();
    }
    await assert.rejects(openSocket(['flint', 'flint-insecure-api-key.wrong']), /handshake answered 401/);
    await assert.rejects(openSocket(['flint', `flint-insecure-api-key.${keys[0]}`], { origin: 'http://evil.example' }), /handshake answered 403/);
  });
});

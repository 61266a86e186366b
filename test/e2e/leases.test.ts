import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';

// A throw anywhere between admission and the last byte must free the slot: each test breaks one
// stage for real and then checks that both slots are idle and serve again.
let server: TestServer;

before(async () => {
  server = await startServer({ FLINT_SLOTS: '2' });
});
after(() => server.close());

const busySlots = async () => (await server.app.metrics.slotsBusy.get()).values.reduce((n, v) => n + v.value, 0);

async function slotsBackToIdle(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await busySlots()) !== 0) {
    if (Date.now() > deadline) assert.fail(`slots still busy: ${await busySlots()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Both slots serve: two requests at once complete.
  const both = await Promise.all([0, 1].map((i) => server.client.chat.completions.create({ messages: [{ role: 'user', content: `after ${i}` }], max_tokens: 2, model: server.app.scheduler.model!.id })));
  assert.equal(both.length, 2);
}

/** `{"type":"allowed_tools","tools":[[[...]]]}`: echoed into the response object, too deep to serialize. */
function deepToolChoice(depth: number): string {
  return `{"type":"allowed_tools","mode":"auto","tools":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

test('the final object cannot be serialized (echoed 8,000-deep tool_choice): stream and non-stream free their slots', async () => {
  for (const stream of [false, true, false, true]) {
    const body = `{"input":"x","max_output_tokens":2,"stream":${stream},"tool_choice":${deepToolChoice(8000)}}`;
    const res = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.text();
  }
  await slotsBackToIdle();
});

test('a store write fails (database closed under the server): the slot is freed', async () => {
  server.app.store.close();
  for (const stream of [false, true]) {
    const res = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'x', max_output_tokens: 2, store: true, stream }) });
    await res.text();
  }
  await slotsBackToIdle();
});

test('the client vanishes mid-write (socket destroyed) on SSE and WebSocket: the slots are freed', async () => {
  const url = new URL(server.url);
  await new Promise<void>((resolve) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ messages: [{ role: 'user', content: 'stream' }], max_tokens: 3000, stream: true }));
  });
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`);
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ type: 'response.create', input: 'stream', max_output_tokens: 3000 }));
  await new Promise((resolve) => ws.once('message', resolve));
  ws.terminate();
  await slotsBackToIdle();
});

test('a server deadline is counted as a timeout, not as a client cancel', async () => {
  await using slow = await startServer({ FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '32768' }, 'server:\n  requestTimeoutMs: 1000\n');
  const res = await fetch(`${slow.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'long' }], max_tokens: 30000, stream: true }) });
  const text = await res.text();
  assert.match(text, /"finish_reason":null/, 'the stream ended with its deadline, not a natural stop');
  const metrics = await (await fetch(`${slow.url}/metrics`)).text();
  assert.match(metrics, /flint_requests_total\{api="chat",status="200",outcome="timeout"\} 1/);
  assert.doesNotMatch(metrics, /outcome="cancelled"/);
});

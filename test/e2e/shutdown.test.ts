import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { spawnServer } from '../helpers/spawnServer.js';
import { tinyModelPath } from '../helpers/testModel.js';

/** A real `flint serve` with two slots, a 1.5 s shutdown grace and room for long generations. */
async function start() {
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-shutdown-'));
  const config = path.join(dir, 'flint.yaml');
  writeFileSync(config, 'server:\n  shutdownGraceMs: 1500\n');
  return spawnServer(['--config', config, '--model', await tinyModelPath()], { FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '32768', FLINT_DATA_DIR: dir });
}

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, pattern: RegExp): Promise<string> {
  let text = '';
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += new TextDecoder().decode(value);
  }
  return text;
}

test('SIGTERM drains: queued requests get 503, running streams end with terminal events, sockets close 1001, exit 0', { timeout: 30_000 }, async () => {
  const server = await start();
  const exited = once(server.child, 'exit');
  try {
    const sse = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'long', max_output_tokens: 30000, stream: true }) });
    const reader = sse.body!.getReader();
    await readUntil(reader, /response\.output_text\.delta/);

    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`);
    await once(ws, 'open');
    const wsEvents: string[] = [];
    const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const wsStreaming = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        const event = JSON.parse(String(data)) as { type: string; error?: { code: string } };
        const type = event.type === 'error' ? `error:${event.error?.code}` : event.type;
        wsEvents.push(type);
        if (type === 'response.output_text.delta') resolve();
      }),
    );
    ws.send(JSON.stringify({ type: 'response.create', input: 'long too', max_output_tokens: 30000 }));
    await wsStreaming;

    // Both slots are busy: this one queues.
    const queued = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'queued' }], max_tokens: 2 }) });
    while (!/^flint_queue_depth 1$/m.test(await (await fetch(`${server.url}/metrics`)).text())) await new Promise((resolve) => setTimeout(resolve, 20));

    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    const refused = await queued;
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);

    const rest = await readUntil(reader, /event: response\.(completed|incomplete|failed)/);
    assert.match(rest, /event: response\.incomplete\ndata: .*"status":"cancelled"/, 'the SSE stream ends with its terminal event');
    const drainMs = Date.now() - signalledAt;
    assert.ok(drainMs >= 1400, `streams ran on during the grace period (${drainMs} ms)`);

    assert.equal(await wsClosed, 1001);
    assert.ok(wsEvents.includes('response.incomplete'), `the WebSocket got its terminal event before 1001: ${wsEvents.slice(-3).join(',')}`);
    // then the event that makes a client reconnect (to another replica behind a balancer)
    assert.equal(wsEvents.at(-1), 'error:websocket_connection_limit_reached');
    const [code] = await exited;
    assert.equal(code, 0);
  } finally {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  }
});

test('a second signal exits at once', { timeout: 30_000 }, async () => {
  const server = await start();
  const exited = once(server.child, 'exit');
  const sse = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'long', max_output_tokens: 30000, stream: true }) });
  await readUntil(sse.body!.getReader(), /response\.output_text\.delta/);
  server.child.kill('SIGTERM');
  // The first signal was handled once the listener refuses new connections.
  while (await fetch(`${server.url}/health`).then(() => true, () => false)) await new Promise((resolve) => setTimeout(resolve, 20));
  const signalledAt = Date.now();
  server.child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 130);
  assert.ok(Date.now() - signalledAt < 1000, 'it did not wait for the grace period');
});

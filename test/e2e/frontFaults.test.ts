import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

/**
 * A front whose member misbehaves the way broken or misconfigured servers do (an HTML page, bad
 * JSON, a line without end, a stream that falls silent, a refused key, an error chunk): every
 * request ends with an OpenAI error (or the stream's error chunk), the front keeps no slot and
 * serves again once the member does. The member here is a loopback fault injector, not an
 * engine: no real engine answers like this on purpose.
 */
type Behaviour = 'ok' | 'html' | 'bad-json' | 'endless-line' | 'silent' | 'refuses-key' | 'rejects' | 'error-chunk';
let behaviour: Behaviour = 'ok';
let member: ReturnType<typeof createServer>;
let memberUrl: string;
let front: TestServer;

function sse(res: ServerResponse, chunks: unknown[], end = true): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const chunk of chunks) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  if (end) res.end('data: [DONE]\n\n');
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [{ id: 'fault-model', object: 'model' }] }));
    return;
  }
  req.resume();
  switch (behaviour) {
    case 'ok':
      return sse(res, [{ choices: [{ index: 0, delta: { content: 'fine' }, finish_reason: null }] }, { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }, { choices: [], usage: { prompt_tokens: 5, completion_tokens: 1 } }]);
    case 'html':
      res.writeHead(200, { 'content-type': 'text/html' });
      return void res.end('<!DOCTYPE html><html><body>It works!</body></html>');
    case 'bad-json':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return void res.end('data: {"choices": [{"delta": {"content": "x"\n\n');
    case 'endless-line':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: ');
      for (let i = 0; i < 5; i++) res.write('x'.repeat(1024 * 1024));
      return void res.end();
    case 'silent':
      sse(res, [{ choices: [{ index: 0, delta: { content: 'and then' }, finish_reason: null }] }], false);
      return; // never another byte
    case 'refuses-key':
      res.writeHead(401, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: { message: 'Invalid API key' } }));
    case 'rejects':
      res.writeHead(400, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: { message: "'temperature' must be at most 2" } }));
    case 'error-chunk':
      return sse(res, [{ error: { message: 'the model crashed', type: 'server_error' } }]);
  }
}

before(async () => {
  member = createServer(answer);
  await new Promise<void>((resolve) => member.listen(0, '127.0.0.1', resolve));
  memberUrl = `http://127.0.0.1:${(member.address() as AddressInfo).port}`;
  front = await startServer(
    { FLINT_WORKERS: '0' },
    `upstreams:\n  - { name: faulty, url: "${memberUrl}", kind: openai, slots: 2 }\nupstream:\n  probeIntervalMs: 100\n  streamIdleTimeoutMs: 1000\n  retries: 1\n`,
  );
});
after(async () => {
  await front?.close();
  member?.closeAllConnections();
  member?.close();
});

async function chat(stream: boolean): Promise<{ status: number; body: string }> {
  const res = await fetch(`${front.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fault-model', messages: [{ role: 'user', content: 'hi' }], stream, max_tokens: 8 }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: await res.text() };
}

async function untilServing(): Promise<void> {
  behaviour = 'ok';
  for (let i = 0; i < 100 && (await fetch(`${front.url}/ready`)).status !== 200; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const { status, body } = await chat(false);
  assert.equal(status, 200, body);
  assert.match(body, /"content":"fine"/);
}

async function busySlots(): Promise<number> {
  const text = await (await fetch(`${front.url}/metrics`)).text();
  return [...text.matchAll(/^flint_slots_busy\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/**
 * What each fault must end as: the status of a plain request, and whether a stream ends the same
 * way before its first byte or (once text was sent) with an error chunk after a 200.
 */
interface Expected {
  readonly status: number;
  readonly code: RegExp;
  readonly stream: 'status' | 'chunk';
}
const expected: Record<Exclude<Behaviour, 'ok'>, Expected> = {
  // Marked down at once; with no other member the request is refused as not ready (safe to retry).
  html: { status: 503, code: /server_unavailable/, stream: 'status' },
  'refuses-key': { status: 503, code: /server_unavailable/, stream: 'status' },
  // Broken answers after the member accepted the request: the member failed it.
  'bad-json': { status: 502, code: /upstream_error/, stream: 'status' },
  'endless-line': { status: 502, code: /upstream_error/, stream: 'status' },
  // Text came, then nothing: lost after output, so the stream ends with an error chunk.
  silent: { status: 502, code: /upstream_error/, stream: 'chunk' },
  // The member's own refusal of the request, with its message.
  rejects: { status: 400, code: /must be at most 2/, stream: 'status' },
  // The member said it failed before any output: tried again (retries: 1), then refused.
  'error-chunk': { status: 503, code: /server_unavailable/, stream: 'status' },
};

for (const [fault, want] of Object.entries(expected) as Array<[Exclude<Behaviour, 'ok'>, Expected]>) {
  test(`a member that answers ${fault}: an error the client can read, no slot held, and the front serves again`, async () => {
    await untilServing();
    behaviour = fault;
    const plain = await chat(false);
    assert.equal(plain.status, want.status, plain.body);
    assert.match(plain.body, /^\{"error":\{"message":/);
    assert.match(plain.body, want.code);
    await untilServing();
    behaviour = fault;
    const streamed = await chat(true);
    assert.equal(streamed.status, want.stream === 'chunk' ? 200 : want.status, streamed.body);
    assert.match(streamed.body, want.stream === 'chunk' ? new RegExp(`data: \\{"error":.*${want.code.source}`) : want.code);
    assert.equal(await busySlots(), 0);
    await untilServing();
  });
}

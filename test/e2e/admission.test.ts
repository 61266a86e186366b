import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RequestId } from '../../src/core/types.js';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
before(async () => {
  server = await startServer(
    { FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '4096' },
    // The storms below are about admission, not the per-client request rate: that limit is off here.
    'scheduler:\n  maxQueueLength: 1\n  maxStreamBufferBytes: 1024\nlimits:\n  requestsPerSecond: 0\n',
  );
});
after(() => server?.close());

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const busySlots = async () => (await server.app.metrics.slotsBusy.get()).values[0]?.value ?? -1;
const queueDepth = async () => (await server.app.metrics.queueDepth.get()).values[0]?.value ?? -1;

test('a full queue answers 503 server_overloaded with Retry-After before any byte; queued requests run when the slot frees', async () => {
  const model = server.app.scheduler.model!.id;
  const long = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'long' }], max_tokens: 4000, temperature: 1, stream: true });
  const iterator = long[Symbol.asyncIterator]();
  await iterator.next(); // the only slot is generating
  const queued = server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'queued' }], max_tokens: 2 });
  await until(async () => (await queueDepth()) === 1, 'the second request to queue');

  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'one too many' }], max_tokens: 2 }),
  });
  assert.equal(res.status, 503);
  assert.ok(Number(res.headers.get('retry-after')) >= 1);
  const body = (await res.json()) as { error: { code: string; type: string; message: string } };
  assert.equal(body.error.code, 'server_overloaded');
  assert.equal(body.error.type, 'service_unavailable_error');
  assert.match(body.error.message, /try again in \d+s/);

  long.controller.abort(); // the client goes away: its slot is freed and the queued request runs
  const done = await queued;
  assert.equal(done.object, 'chat.completion');
  await until(async () => (await busySlots()) === 0, 'the slot to be released');
});

test('a queued request whose client leaves is removed from the queue at once', async () => {
  const model = server.app.scheduler.model!.id;
  const long = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'long' }], max_tokens: 4000, stream: true });
  await long[Symbol.asyncIterator]().next();
  const controller = new AbortController();
  const queued = server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }, { signal: controller.signal });
  await until(async () => (await queueDepth()) === 1, 'the request to queue');
  controller.abort();
  await assert.rejects(queued);
  await until(async () => (await queueDepth()) === 0, 'the queue to empty');
  long.controller.abort();
  await until(async () => (await busySlots()) === 0, 'the slot to be released');
});

test('200 streams aborted at random points leave 0 busy slots and a server that serves normally', async () => {
  const model = server.app.scheduler.model!.id;
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const one = async (i: number) => {
    const controller = new AbortController();
    const abortAfterChunks = Math.floor(random() * 6); // 0 = abort before the first byte arrives
    try {
      if (abortAfterChunks === 0) setTimeout(() => controller.abort(), Math.floor(random() * 3));
      const stream = await server.client.chat.completions.create(
        { model, messages: [{ role: 'user', content: `stream ${i}` }], max_tokens: 48, stream: true },
        { signal: controller.signal },
      );
      let n = 0;
      for await (const _ of stream) if (++n >= abortAfterChunks) controller.abort();
    } catch {
      // aborted by us: expected
    }
  };
  // Waves of concurrent clients against one slot and a queue of one: some are refused with 503, most queue or run.
  for (let wave = 0; wave < 200; wave += 4) await Promise.all([0, 1, 2, 3].map((k) => one(wave + k)));
  await until(async () => (await busySlots()) === 0, 'every slot to be released');
  assert.equal(await queueDepth(), 0);
  const res = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'after the storm' }], max_tokens: 4 });
  assert.equal(res.object, 'chat.completion');
  assert.ok(res.usage!.completion_tokens >= 1);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /flint_requests_total\{api="chat",status="\d+",outcome="cancelled"\} \d+/);
});

test('a consumer that stops reading is cancelled at the buffer limit instead of growing memory', async () => {
  const controller = new AbortController();
  await using generation = server.app.scheduler.start(
    { id: 'req_backpressure' as RequestId, model: 'x', input: { type: 'chat', messages: [{ role: 'user', content: 'go' }] }, sampling: { temperature: 1, seed: 7 }, maxTokens: 3000, stop: [] },
    { signal: controller.signal },
  );
  const iterator = generation.events[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value?.type, 'start');
  // Stop reading until the worker has been told to stop; the gateway buffers at most ~1 KiB meanwhile.
  await until(async () => ((await server.app.metrics.streamOverflows.get()).values[0]?.value ?? 0) >= 1, 'the overflow to trigger');
  let last;
  let chars = 0;
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    last = next.value;
    if (last.type === 'delta') chars += last.text.length;
  }
  assert.equal(last?.type, 'done');
  assert.equal(last?.type === 'done' && last.finishReason, 'cancelled');
  assert.ok(last?.type === 'done' && last.usage.completionTokens < 3000);
  assert.ok(chars < 64 * 1024, `buffered ${chars} chars`);
  await until(async () => (await busySlots()) === 0, 'the slot to be released');
});

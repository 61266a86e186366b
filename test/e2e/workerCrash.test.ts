import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { APIError } from 'openai';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_SLOTS: '1' });
});
after(() => server?.close());

/** Resolves when the pool has a live worker whose pid differs from `oldPid`. */
async function workerReplaced(oldPid: number | undefined): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pid = server.app.pool.liveWorkers[0]?.pid;
    if (pid !== undefined && pid !== oldPid && server.app.scheduler.readiness().isReady) return pid;
    if (Date.now() > deadline) throw new Error('worker was not restarted within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('SIGKILL of the worker mid-stream ends the stream with an error; the gateway restarts it and serves again', async () => {
  const model = server.app.scheduler.model!.id;
  const pid = server.app.pool.liveWorkers[0].pid!;
  const stream = await server.client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Write a very long program.' }],
    max_tokens: 900,
    temperature: 0.8,
    stream: true,
  });
  let chunks = 0;
  await assert.rejects(
    (async () => {
      for await (const _chunk of stream) {
        if (++chunks === 3) process.kill(pid, 'SIGKILL');
      }
    })(),
    (err: unknown) => {
      assert.ok(err instanceof APIError, String(err));
      assert.match(err.message, /worker stopped/);
      return true;
    },
  );
  assert.ok(chunks >= 3);

  // While the worker is down, new requests are refused with 503, not hung.
  if (!server.app.scheduler.readiness().isReady) {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
    });
    assert.ok(res.status === 503 || res.status === 200, `got ${res.status}`);
    if (res.status === 503) assert.ok(res.headers.get('retry-after'));
  }

  const newPid = await workerReplaced(pid);
  assert.notEqual(newPid, pid);
  const res = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'again' }], max_tokens: 4 });
  assert.equal(res.object, 'chat.completion');
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^flint_worker_restarts_total 1$/m);
  assert.match(metrics, /^flint_slots_busy\{worker="0"\} 0$/m);
  assert.match(metrics, /^flint_worker_up\{worker="0"\} 1$/m);
});

test('a response that failed (worker killed mid-stream) is stored without its conversation', async () => {
  await workerReplaced(undefined);
  const pid = server.app.pool.liveWorkers[0].pid!;
  const res = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'a private prompt', max_output_tokens: 900, store: true, stream: true }) });
  const reader = res.body!.getReader();
  let text = '';
  let killed = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    if (!killed && text.includes('response.output_text.delta')) {
      killed = true;
      process.kill(pid, 'SIGKILL');
    }
  }
  assert.match(text, /event: response\.failed/);
  const id = /"id":"(resp_[^"]+)"/.exec(text)![1];
  const stored = (await (await fetch(`${server.url}/v1/responses/${id}`)).json()) as { status: string };
  assert.equal(stored.status, 'failed');
  const items = (await (await fetch(`${server.url}/v1/responses/${id}/input_items`)).json()) as { data: unknown[] };
  assert.deepEqual(items.data, [], 'the input is not kept');
  await workerReplaced(pid);
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_WORKERS: '2', FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '4096' });
});
after(() => server?.close());

test('killing one worker fails only its request; the stream on the other worker completes', async () => {
  const model = server.app.scheduler.model!.id;
  assert.equal(server.app.pool.liveWorkers.length, 2);
  const open = async (content: string) => {
    const stream = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content }], max_tokens: 1500, temperature: 1, seed: 3, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    return iterator;
  };
  const first = await open('first');
  const second = await open('second');
  // Both slots are busy, one per worker; kill worker 0 (the least recently used slot went first).
  const victim = server.app.pool.liveWorkers.find((w) => w.index === 0)!;
  process.kill(victim.pid!, 'SIGKILL');
  const drain = async (it: AsyncIterator<{ choices: Array<{ finish_reason: string | null }> }>) => {
    let finish: string | null = null;
    for (let next = await it.next(); !next.done; next = await it.next()) finish = next.value.choices[0]?.finish_reason ?? finish;
    return finish;
  };
  const [a, b] = await Promise.allSettled([drain(first), drain(second)]);
  const failed = [a, b].filter((r) => r.status === 'rejected');
  const finished = [a, b].filter((r) => r.status === 'fulfilled');
  assert.equal(failed.length, 1, 'exactly the killed worker’s request fails');
  assert.equal(finished.length, 1);
  assert.equal((finished[0] as PromiseFulfilledResult<string | null>).value, 'length', 'the other stream runs to its token cap');
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

// A worker that hangs without dying (here: SIGSTOP, a real stop of the process) must be noticed
// by its missing heartbeats, killed and restarted, with /ready saying so meanwhile.
let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_SLOTS: '1' }, 'engine:\n  heartbeatIntervalMs: 200\n  heartbeatTimeoutMs: 1500\n');
});
after(() => server?.close());

test('a stopped worker is killed after its heartbeat timeout and replaced; requests succeed again', { timeout: 60_000 }, async () => {
  const pid = server.app.pool.liveWorkers[0].pid!;
  const stoppedAt = Date.now();
  process.kill(pid, 'SIGSTOP');
  let sawNotReady = false;
  for (;;) {
    const ready = await fetch(`${server.url}/ready`);
    if (ready.status === 503) sawNotReady = true;
    const current = server.app.pool.liveWorkers[0]?.pid;
    if (sawNotReady && current !== undefined && current !== pid && ready.status === 200) break;
    if (Date.now() - stoppedAt > 30_000) assert.fail('the hung worker was not replaced within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const recoveredMs = Date.now() - stoppedAt;
  assert.ok(recoveredMs >= 1400, `killed only after the timeout (${recoveredMs} ms)`);
  const res = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  assert.equal(res.object, 'chat.completion');
});

test('a stall of the gateway itself past the heartbeat timeout does not kill a healthy worker', { timeout: 30_000 }, async () => {
  const pid = server.app.pool.liveWorkers[0].pid!;
  // The gateway runs in this process: block its event loop for longer than heartbeatTimeoutMs.
  const until = performance.now() + 2_500;
  while (performance.now() < until) {
    // busy: no timer, no IPC message is handled meanwhile
  }
  // Let a few heartbeat ticks run.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.equal(server.app.pool.liveWorkers[0]?.pid, pid, 'the worker was not replaced');
  const res = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'still there' }], max_tokens: 2 });
  assert.equal(res.object, 'chat.completion');
});

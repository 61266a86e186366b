import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeBarrier } from '../../src/worker/DecodeBarrier.js';

const settled = async (promise: Promise<void> | undefined) => {
  if (!promise) return true;
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

test('slots wait for each other, and the last to arrive releases them all at once', async () => {
  const barrier = new DecodeBarrier(10_000);
  const [a, b, c] = [{}, {}, {}];
  for (const m of [a, b, c]) barrier.join(m);
  const waitA = barrier.arrive(a);
  const waitB = barrier.arrive(b);
  assert.equal(await settled(waitA), false);
  assert.equal(await settled(waitB), false);
  assert.equal(barrier.arrive(c), undefined, 'the last one does not wait');
  assert.equal(await settled(waitA), true);
  assert.equal(await settled(waitB), true);
  // The next step starts afresh.
  const again = barrier.arrive(a);
  assert.equal(await settled(again), false);
  barrier.leave(b);
  barrier.leave(c);
  assert.equal(await settled(again), true, 'the others leaving releases the one waiting');
});

test('a lone slot never waits, and a stalled one holds the others at most maxWaitMs', async () => {
  const barrier = new DecodeBarrier(20);
  const [a, b] = [{}, {}];
  barrier.join(a);
  assert.equal(barrier.arrive(a), undefined);
  barrier.join(b);
  const started = performance.now();
  await barrier.arrive(a);
  const waited = performance.now() - started;
  assert.ok(waited >= 15 && waited < 1000, `waited ${waited} ms`);
  barrier.leave(a);
  barrier.leave(b);
});

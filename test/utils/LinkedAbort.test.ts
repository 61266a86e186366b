import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { LinkedAbort } from '../../src/utils/LinkedAbort.js';

test('a parent abort reaches the linked signal with its reason', () => {
  const parent = new AbortController();
  const linked = new LinkedAbort([parent.signal]);
  parent.abort('gone');
  assert.equal(linked.signal.aborted, true);
  assert.equal(linked.signal.reason, 'gone');
});

test('an already aborted parent aborts it at once; the first reason wins', () => {
  const linked = new LinkedAbort([AbortSignal.abort('first'), AbortSignal.abort('second')]);
  assert.equal(linked.signal.reason, 'first');
  linked.abort('later');
  assert.equal(linked.signal.reason, 'first');
});

test('its own abort does not touch the parent and removes its listener from it', () => {
  const parent = new AbortController();
  const linked = new LinkedAbort([parent.signal]);
  assert.equal(getEventListeners(parent.signal, 'abort').length, 1);
  linked.abort('deadline');
  assert.equal(parent.signal.aborted, false);
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
});

test('unlinked, a long-lived parent keeps no listener and its abort no longer reaches it', () => {
  const parent = new AbortController();
  for (let i = 0; i < 100; i++) new LinkedAbort([parent.signal]).unlink();
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  const linked = new LinkedAbort([parent.signal]);
  linked.unlink();
  parent.abort('closed');
  assert.equal(linked.signal.aborted, false);
});

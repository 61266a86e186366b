import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StopDetector } from '../../src/utils/StopDetector.js';

function run(stops: string[], chunks: string[]): { text: string; isStopped: boolean } {
  const detector = new StopDetector(stops);
  let text = '';
  for (const chunk of chunks) {
    const out = detector.push(chunk);
    text += out.text;
    if (out.isStopped) return { text, isStopped: true };
  }
  return { text: text + detector.flush(), isStopped: false };
}

test('a stop string split across chunks is found and never emitted', () => {
  assert.deepEqual(run(['END'], ['abc E', 'N', 'D tail']), { text: 'abc ', isStopped: true });
});

test('a partial match that does not complete is released', () => {
  const detector = new StopDetector(['END']);
  assert.deepEqual(detector.push('abc EN'), { text: 'abc ', isStopped: false });
  assert.deepEqual(detector.push('x'), { text: 'ENx', isStopped: false });
  assert.equal(detector.flush(), '');
  assert.deepEqual(run(['END'], ['abc EN']), { text: 'abc EN', isStopped: false });
});

test('the earliest of several stops wins', () => {
  assert.deepEqual(run(['bb', 'a'], ['xxbba']), { text: 'xx', isStopped: true });
  assert.deepEqual(run([], ['free ', 'text']), { text: 'free text', isStopped: false });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sharedChars, toFingerprint } from '../../src/scheduler/fingerprint.js';

const chat = (...contents: string[]) => toFingerprint({ type: 'chat', messages: contents.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content })) });

test('a continued conversation shares every earlier message', () => {
  const turn1 = chat('hello', 'hi there');
  const turn2 = chat('hello', 'hi there', 'write a loop');
  assert.equal(sharedChars(turn1, turn2), turn1.chars.at(-1));
  assert.equal(sharedChars(turn2, turn2), turn2.chars.at(-1));
});

test('a different first message shares nothing; a changed middle message shares the blocks before it', () => {
  assert.equal(sharedChars(chat('a', 'b'), chat('x', 'b')), 0);
  const a = chat('same', 'changed', 'tail');
  const b = chat('same', 'CHANGED', 'tail');
  assert.equal(sharedChars(a, b), a.chars[0]);
  assert.equal(sharedChars(undefined, b), 0);
});

test('raw text is fingerprinted in blocks, so a shared long prefix counts', () => {
  const base = 'x'.repeat(1000);
  const a = toFingerprint({ type: 'text', prompt: base + 'AAA' });
  const b = toFingerprint({ type: 'text', prompt: base + 'BBB' });
  assert.ok(sharedChars(a, b) >= 768);
  const fimA = toFingerprint({ type: 'infill', prefix: base, suffix: 'one' });
  const fimB = toFingerprint({ type: 'infill', prefix: base, suffix: 'two' });
  assert.ok(sharedChars(fimA, fimB) >= 1000);
});

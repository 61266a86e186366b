import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { SavedPrefixes } from '../../src/worker/SavedPrefixes.js';
import { useTestModel } from '../helpers/engine.js';
import { tinyModelPath } from '../helpers/testModel.js';

test('saved prefixes live in /dev/shm when it can hold the budget, on disk when it cannot', () => {
  assert.ok(existsSync('/dev/shm'), 'this test needs a Linux /dev/shm');
  const small = new SavedPrefixes(1024 * 1024);
  const huge = new SavedPrefixes(2 ** 50); // a petabyte: no /dev/shm holds that
  try {
    assert.ok(small.directory.startsWith('/dev/shm/'), small.directory);
    assert.ok(huge.directory.startsWith(tmpdir()), huge.directory);
  } finally {
    small.dispose();
    huge.dispose();
  }
});

describe('a save that cannot be written', () => {
  const { model } = useTestModel(tinyModelPath);
  test('is a miss, not an error: the folder gone (or /dev/shm full) leaves the sequence and the cache as they were', async () => {
    const saved = new SavedPrefixes(64 * 1024 * 1024);
    const context = await model().createContext({ contextSize: 512, sequences: 1, threads: 1 });
    try {
      const sequence = context.getSequence();
      await sequence.evaluateWithoutGeneratingNewTokens(model().tokenize('a prefix worth saving '.repeat(8)));
      rmSync(saved.directory, { recursive: true, force: true });
      assert.equal(await saved.save(sequence, 't:one'), undefined);
      assert.equal(saved.bytes, 0);
      assert.ok(sequence.contextTokens.length > 0, 'the sequence still holds its tokens');
    } finally {
      await context.dispose();
      saved.dispose();
    }
  });
});

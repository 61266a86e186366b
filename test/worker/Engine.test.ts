import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/worker/Engine.js';
import { tinyModelPath } from '../helpers/testModel.js';

let engine: Engine;
before(async () => {
  engine = await Engine.create(
    {
      modelPath: await tinyModelPath(),
      contextSize: 256,
      slots: 1,
      threads: 1,
      batchThreads: 1,
      batchThreadsMinTokens: 32,
      batchSize: 64,
      gpu: 'off',
      defaultMaxTokens: 0,
      maxOutputTokens: 0,
      savedPrefixBytes: 0,
      minSavedPrefixTokens: 64,
    saveIdleSlotsAfterMs: 0,
      streamCoalesceMs: 2,
    },
    () => undefined,
  );
});
after(() => engine.dispose());

test('the grammar cache is bounded in bytes, not only in count', async () => {
  // Ten 1 MB schemas (a long description each): the cache keeps at most ~4 MB of them.
  for (let i = 0; i < 10; i++) {
    await engine.grammarFor({ type: 'json_schema', schema: { type: 'object', description: `${i}`.repeat(1024 * 1024), properties: { a: { type: 'string' } } } });
  }
  assert.ok(engine.grammarCacheChars <= 5 * 1024 * 1024, `cache holds ${engine.grammarCacheChars} chars`);
  assert.ok(engine.grammarCacheChars >= 1024 * 1024, 'the latest grammar is cached');
});

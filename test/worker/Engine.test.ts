import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/worker/Engine.js';
import { testEngineSettings } from '../helpers/engine.js';
import { tinyModelPath } from '../helpers/testModel.js';

let engine: Engine;
before(async () => {
  engine = await Engine.create(testEngineSettings(await tinyModelPath(), { contextSize: 256 }), () => undefined);
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

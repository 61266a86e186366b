import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { spawnServer } from '../helpers/spawnServer.js';
import { tinyModelPath } from '../helpers/testModel.js';

test('a stored response survives kill -9 of the gateway and can be continued after restart', async (t) => {
  const modelPath = await tinyModelPath();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'flint-persist-'));
  const env = { FLINT_MODEL: modelPath, FLINT_DATA_DIR: dataDir };

  const first = await spawnServer([], env);
  t.after(() => first.child.kill('SIGKILL'));
  const client1 = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const created = await client1.responses.create({ input: 'Remember this conversation.', max_output_tokens: 4, temperature: 0 });
  const exited = once(first.child, 'exit');
  first.child.kill('SIGKILL');
  await exited;

  const second = await spawnServer([], env);
  t.after(() => second.child.kill('SIGKILL'));
  const client2 = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const retrieved = await client2.responses.retrieve(created.id);
  assert.equal(retrieved.id, created.id);
  assert.equal(retrieved.status, created.status);
  assert.deepEqual(retrieved.output, created.output);
  const next = await client2.responses.create({ previous_response_id: created.id, input: 'Continue.', max_output_tokens: 2 });
  assert.ok(next.usage!.input_tokens > created.usage!.input_tokens);
});

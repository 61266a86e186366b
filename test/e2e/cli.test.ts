import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { repoRoot, tinyModelPath } from '../helpers/testModel.js';

const bin = path.join(repoRoot, 'bin', 'flint.js');

/** Environment without any FLINT_* variable of the calling shell. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLINT_')) env[k] = v;
  return { ...env, FLINT_THREADS: '1', FLINT_CONTEXT_SIZE: '512', ...extra };
}

test('flint serve --port 0 prints its URL, serves, and exits 0 on SIGTERM', async (t) => {
  await tinyModelPath(); // the demo model is the tiny preset: generated once, shared with the other tests
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--host', '127.0.0.1'], { cwd: repoRoot, env: cleanEnv({ FLINT_LOG_LEVEL: 'warn' }), stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let url: string | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
    if (match) {
      url = match[1];
      break;
    }
  }
  assert.ok(url, `no URL printed; stderr: ${stderr}`);
  assert.doesNotMatch(url, /:0$/);
  assert.match(stderr, /random-weights DEMO model/, 'says loudly that it serves the demo model');
  assert.match(stderr, /flint pull/);
  assert.equal((await fetch(`${url}/ready`)).status, 200);
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
  assert.equal(models.data[0].id, 'flint-demo-tiny');
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0);
});

test('an invalid setting stops start-up with a message naming the key, exit code 2', async () => {
  const child = spawn(process.execPath, [bin, 'serve'], { cwd: repoRoot, env: cleanEnv({ FLINT_WORKERS: '0', FLINT_PORT: 'eighty' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(stderr, /engine\.workers/);
  assert.match(stderr, /FLINT_PORT/);
});

test('a missing model file is a clear start-up error', async () => {
  const child = spawn(process.execPath, [bin, 'serve', '--model', 'does/not/exist.gguf'], { cwd: repoRoot, env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(stderr, /no such file 'does\/not\/exist\.gguf'/);
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { cleanEnv, flintBin, spawnServer } from '../helpers/spawnServer.js';
import { repoRoot, tinyModelPath } from '../helpers/testModel.js';

test('flint serve --port 0 prints its URL, serves, and exits 0 on SIGTERM', async (t) => {
  await tinyModelPath(); // the demo model is the tiny preset: generated once, shared with the other tests
  const server = await spawnServer([], {});
  t.after(() => server.child.kill('SIGKILL'));
  assert.doesNotMatch(server.url, /:0$/);
  assert.match(server.stderr(), /random-weights DEMO model/, 'says loudly that it serves the demo model');
  assert.match(server.stderr(), /flint pull/);
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
  assert.equal(models.data[0].id, 'flint-demo-tiny');
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0);
});

test('--log-format pretty: one start-up summary (no second listening line) and one short line per request', async (t) => {
  const child = spawn(process.execPath, [flintBin, 'serve', '--port', '0', '--host', '127.0.0.1', '--log-format', 'pretty', '--model', await tinyModelPath()], {
    cwd: repoRoot,
    env: cleanEnv({ FLINT_LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const until = async (pattern: RegExp) => {
    for (let i = 0; i < 400 && !pattern.test(out); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    return pattern.exec(out);
  };
  const url = (await until(/Flint listening on (http:\/\/127\.0\.0\.1:\d+)/))?.[1];
  assert.ok(url, out);
  await until(/^\s+clients\s/m);
  const model = ((await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> }).data[0].id;
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }) });
  assert.equal(res.status, 200);
  await res.json();
  await until(/\/v1\/chat\/completions 200/);
  assert.doesNotMatch(out, /Server listening at/);
  assert.equal(out.match(/listening/g)?.length, 1, out);
  assert.doesNotMatch(out, /^\{/m, 'no JSON lines');
  assert.match(out, /^\s+engine\s+1 worker x \d+ slots?, threads \d+ decode \/ \d+ prompt, gpu/m);
  assert.match(out, /INFO: \/v1\/chat\/completions 200 {2}\d+ prompt -> \d+ tokens {2}first token [\d.]+ m?s, total [\d.]+ m?s/);
});

async function runFailing(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const child = spawn(process.execPath, [flintBin, ...args], { cwd: repoRoot, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stderr };
}

test('an invalid setting stops start-up with a message naming the key, exit code 2', async () => {
  const { code, stderr } = await runFailing(['serve'], { FLINT_WORKERS: '0', FLINT_PORT: 'eighty' });
  assert.equal(code, 2);
  assert.match(stderr, /engine\.workers/);
  assert.match(stderr, /FLINT_PORT/);
});

test('a missing model file is a clear start-up error', async () => {
  const { code, stderr } = await runFailing(['serve', '--model', 'does/not/exist.gguf'], {});
  assert.equal(code, 2);
  assert.match(stderr, /no such file 'does\/not\/exist\.gguf'/);
});

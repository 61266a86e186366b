import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parsePromText, valueOf } from '../helpers/promText.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawnServer.js';
import { tinyModelPath } from '../helpers/testModel.js';

/** `flint serve` with one slot and the disk prompt cache on, in `dataDir`. */
async function start(dataDir: string): Promise<SpawnedServer> {
  const config = path.join(dataDir, 'flint.yaml');
  writeFileSync(config, 'engine:\n  minSavedPrefixTokens: 16\n  saveIdleSlotsAfterMs: 0\n');
  return spawnServer(['--config', config, '--model', await tinyModelPath()], { FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '1024', FLINT_DATA_DIR: dataDir, FLINT_DISK_CACHE_BYTES: String(64 * 1024 * 1024) });
}

async function stop(server: SpawnedServer): Promise<number | null> {
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  const [code] = await exited;
  return code as number | null;
}

const system = 'You are Flint, a careful coding assistant. Answer with code only.\n' + 'export function helper(value: number): number { return value * 2; }\n'.repeat(12);
const conversations = {
  a: [
    { role: 'system', content: system },
    { role: 'user', content: 'Conversation A: parse a CSV line.' },
  ],
  b: [
    { role: 'system', content: 'A different assistant entirely. ' + 'let other = compute(1, 2, 3);\n'.repeat(10) },
    { role: 'user', content: 'Conversation B.' },
  ],
};

async function ask(server: SpawnedServer, messages: unknown[]): Promise<{ text: string; promptTokens: number; cachedTokens: number }> {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, max_tokens: 8, temperature: 0 }) });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { choices: Array<{ message: { content: string | null } }>; usage: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } };
  return { text: body.choices[0].message.content ?? '', promptTokens: body.usage.prompt_tokens, cachedTokens: body.usage.prompt_tokens_details?.cached_tokens ?? 0 };
}

async function scrape(server: SpawnedServer) {
  return parsePromText(await (await fetch(`${server.url}/metrics`)).text());
}

test('after a restart, a prompt whose prefix was saved is restored from disk, not recomputed', { timeout: 60_000 }, async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'flint-disk-e2e-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await start(dataDir);
  t.after(() => {
    if (first.child.exitCode === null) first.child.kill('SIGKILL');
  });
  const coldA = await ask(first, conversations.a);
  assert.equal(coldA.cachedTokens, 0);
  const coldB = await ask(first, conversations.b); // takes the only slot: A goes to saved prefixes
  assert.ok(coldB.cachedTokens < 16, `B shares only the template's first tokens with A (${coldB.cachedTokens})`);
  assert.equal(await stop(first), 0);
  // Shutdown wrote A (from host memory) and B (from its slot) to disk.
  const files = readdirSync(path.join(dataDir, 'prompt-cache', 'w0')).filter((name) => name.endsWith('.fpc'));
  assert.equal(files.length, 2, files.join(', '));

  const second = await start(dataDir);
  t.after(() => {
    if (second.child.exitCode === null) second.child.kill('SIGKILL');
  });
  const before = await scrape(second);
  assert.equal(valueOf(before, 'flint_disk_prompt_cache_entries', { worker: '0' }), 2, 'the new worker found both entries');
  assert.equal(valueOf(before, 'flint_disk_prompt_cache_limit_bytes'), 64 * 1024 * 1024);

  const warmA = await ask(second, conversations.a);
  assert.equal(warmA.promptTokens, coldA.promptTokens);
  assert.equal(warmA.cachedTokens, warmA.promptTokens - 1, 'all but the last prompt token came from the disk cache');
  assert.equal(warmA.text, coldA.text, 'the restored state generates what the computed one did');
  const afterA = await scrape(second);
  assert.equal(valueOf(afterA, 'flint_disk_prompt_cache_restores_total', { result: 'ok' }), 1);
  assert.equal(valueOf(afterA, 'flint_disk_prompt_cache_lookups_total', { result: 'hit' }), 1);
  assert.equal(valueOf(afterA, 'flint_disk_prompt_cache_read_seconds_count'), 1);
  assert.equal(valueOf(afterA, 'flint_prompt_tokens_restored_total'), warmA.promptTokens - 1);
  assert.equal(valueOf(afterA, 'flint_prompt_cache_requests_total', { result: 'hit', reason: 'saved_prefix' }), 1);

  const warmB = await ask(second, conversations.b);
  assert.equal(warmB.cachedTokens, warmB.promptTokens - 1, 'the conversation its slot held at shutdown is on disk too');
  const afterB = await scrape(second);
  assert.equal(valueOf(afterB, 'flint_disk_prompt_cache_restores_total', { result: 'ok' }), 2);
  assert.equal(valueOf(afterB, 'flint_disk_prompt_cache_bad_files_total'), 0);
  assert.equal(await stop(second), 0);
});

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SqliteResponseStore } from '../../src/store/SqliteResponseStore.js';

const entry = (id: string, createdAtS = Math.floor(Date.now() / 1000)) => ({
  id,
  owner: 'anonymous',
  createdAtS,
  response: { id, status: 'completed' },
  inputItems: [{ id: `msg_${id}`, type: 'message' }],
  outputItems: [],
});

test('round trip, delete, and data that outlives the store object', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-store-'));
  const store = new SqliteResponseStore(dir, { maxResponses: 100, maxAgeS: 3600, maxBytes: 1 << 30 });
  store.save(entry('resp_a'));
  assert.deepEqual(store.get('resp_a', 'anonymous')?.inputItems, [{ id: 'msg_resp_a', type: 'message' }]);
  store.close();
  const reopened = new SqliteResponseStore(dir, { maxResponses: 100, maxAgeS: 3600, maxBytes: 1 << 30 });
  assert.equal(reopened.get('resp_a', 'anonymous')?.response.status, 'completed');
  assert.equal(reopened.delete('resp_a', 'anonymous'), true);
  assert.equal(reopened.delete('resp_a', 'anonymous'), false);
  assert.equal(reopened.get('resp_a', 'anonymous'), undefined);
  reopened.close();
});

test('bounded by count (oldest pruned first) and by age', () => {
  const store = new SqliteResponseStore(mkdtempSync(path.join(tmpdir(), 'flint-store-')), { maxResponses: 3, maxAgeS: 60, maxBytes: 1 << 30 });
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < 64; i++) store.save(entry(`resp_${i}`, now - 64 + i));
  assert.equal(store.count(), 3);
  assert.ok(store.get('resp_63', 'anonymous'));
  assert.equal(store.get('resp_0', 'anonymous'), undefined);
  store.save(entry('resp_old', now - 120));
  assert.equal(store.get('resp_old', 'anonymous'), undefined, 'older than maxAgeS is gone');
  store.close();
});

test('output items are found by id while their response is stored, and go with it', () => {
  const store = new SqliteResponseStore(mkdtempSync(path.join(tmpdir(), 'flint-store-')), { maxResponses: 100, maxAgeS: 3600, maxBytes: 1 << 30 });
  store.save({ ...entry('resp_items'), outputItems: [{ id: 'msg_out', type: 'message', role: 'assistant' }] });
  assert.deepEqual(store.findItem('msg_out', 'anonymous'), { id: 'msg_out', type: 'message', role: 'assistant' });
  assert.equal(store.findItem('msg_resp_items', 'anonymous'), undefined, 'input items are not indexed');
  store.delete('resp_items', 'anonymous');
  assert.equal(store.findItem('msg_out', 'anonymous'), undefined);
  store.close();
});

test('bounded by bytes: the oldest responses go until the stored JSON fits', () => {
  const store = new SqliteResponseStore(mkdtempSync(path.join(tmpdir(), 'flint-store-')), { maxResponses: 1000, maxAgeS: 3600, maxBytes: 20_000 });
  const now = Math.floor(Date.now() / 1000);
  const big = (id: string, at: number) => ({ ...entry(id, at), inputItems: [{ id: `msg_${id}`, type: 'message', text: 'x'.repeat(4_000) }] });
  for (let i = 0; i < 10; i++) store.save(big(`resp_${i}`, now - 10 + i));
  assert.ok(store.count() <= 5 && store.count() >= 3, `kept ${store.count()}`);
  assert.ok(store.get('resp_9', 'anonymous'), 'the newest stays');
  assert.equal(store.get('resp_0', 'anonymous'), undefined, 'the oldest went first');
  store.close();
});

test("a response's session (lineage) key is kept with it; a store made before the column existed gains it", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-store-'));
  // A store file as an older Flint wrote it: no session_key column, one row.
  const { default: Database } = await import('better-sqlite3');
  const old = new Database(path.join(dir, 'responses.sqlite'));
  old.exec(`CREATE TABLE responses (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, response TEXT NOT NULL, input_items TEXT NOT NULL, output_items TEXT NOT NULL, owner TEXT NOT NULL DEFAULT 'anonymous', bytes INTEGER NOT NULL DEFAULT 0)`);
  old.prepare('INSERT INTO responses (id, created_at, response, input_items, output_items) VALUES (?, ?, ?, ?, ?)').run('resp_old', Math.floor(Date.now() / 1000), '{}', '[]', '[]');
  old.close();
  const store = new SqliteResponseStore(dir, { maxResponses: 100, maxAgeS: 3600, maxBytes: 1 << 30 });
  assert.ok(store.get('resp_old', 'anonymous'));
  assert.equal(store.get('resp_old', 'anonymous')?.sessionKey, undefined);
  store.save({ ...entry('resp_b'), sessionKey: 'resp_a' });
  store.close();
  const reopened = new SqliteResponseStore(dir, { maxResponses: 100, maxAgeS: 3600, maxBytes: 1 << 30 });
  assert.equal(reopened.get('resp_b', 'anonymous')?.sessionKey, 'resp_a');
  reopened.close();
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { catalogFile, loadCatalog } from '../../src/modelfiles/loadCatalog.js';
import { splitParts, toModelSource } from '../../src/modelfiles/toModelSource.js';

const dir = mkdtempSync(path.join(tmpdir(), 'flint-catalog-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the packaged catalog is valid and has the models a user looks for', () => {
  const catalog = loadCatalog(catalogFile(''));
  const names = catalog.map((e) => e.name);
  for (const name of ['qwen2.5-coder-0.5b-instruct', 'qwen2.5-coder-1.5b-instruct', 'qwen2.5-coder-7b-instruct', 'qwen2.5-coder-14b-instruct', 'qwen3-coder-30b-a3b-instruct', 'deepseek-coder-v2-lite-instruct', 'devstral-small-2507', 'codestral-22b-v0.1']) {
    assert.ok(names.includes(name), name);
  }
  assert.ok(catalog.some((e) => e.thinking && e.tier === 'cpu'), 'a small thinking model');
  assert.ok(catalog.some((e) => e.fim && /codestral/i.test(e.name)), 'a Codestral-class FIM model');
  for (const entry of catalog) {
    const source = toModelSource(entry.name, catalog);
    assert.equal(source.files?.length, entry.files.length, entry.name);
    for (const score of entry.scores) assert.ok(score.source.length > 0, `${entry.name}: ${score.benchmark} names its source`);
    for (const field of entry.unverified ?? []) assert.ok(field in entry, `${entry.name}: unverified '${field}' is a field of the entry`);
  }
});

test('a bad catalog entry is reported with its name and field, all problems at once', () => {
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, 'models:\n  - name: x\n    title: X\n    source: https://example.invalid/x.gguf\n    files: []\n    quantization: Q4\n    parameters: 1B\n    contextLength: 4096\n    chatTemplate: chatml\n    fim: yes\n    thinking: false\n    tier: laptop\n');
  assert.throws(() => loadCatalog(file), (err: Error) => {
    for (const field of ['source', 'files', 'fim', 'tier']) assert.match(err.message, new RegExp(`models\\[0\\] \\(x\\)\\.${field}`), field);
    return true;
  });
});

test('model sources: catalog names, hf: file URIs (split parts expand), hf:owner/repo:quant, URLs; anything else is refused', () => {
  assert.deepEqual(splitParts('m-00001-of-00003.gguf'), ['m-00001-of-00003.gguf', 'm-00002-of-00003.gguf', 'm-00003-of-00003.gguf']);
  assert.deepEqual(splitParts('m.gguf'), ['m.gguf']);
  const split = toModelSource('hf:o/r/sub/m-00002-of-00002.gguf#v1', []);
  assert.deepEqual(split.repo, { id: 'o/r', revision: 'v1' });
  assert.deepEqual(split.files?.map((f) => [f.name, f.repoPath]), [['m-00001-of-00002.gguf', 'sub/m-00001-of-00002.gguf'], ['m-00002-of-00002.gguf', 'sub/m-00002-of-00002.gguf']]);
  assert.equal(toModelSource('hf:o/r:Q4_K_M', []).files, undefined, 'only the hub knows the file of a quant tag');
  assert.deepEqual(toModelSource('https://host.invalid/a/b%20c.gguf', []).files, [{ name: 'b c.gguf' }]);
  for (const bad of ['nothing-like-this', 'hf:o/r/model.bin', 'https://host.invalid/page.html', 'ftp://x/y.gguf']) assert.throws(() => toModelSource(bad, []), /model '/, bad);
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { renderDocs } from '../../scripts/generateDocs.js';
import { repoRoot } from '../helpers/testModel.js';

test('docs/configuration.md and docs/metrics.md are what npm run docs generates from the schema and the metrics', async () => {
  for (const [file, expected] of Object.entries(await renderDocs())) {
    const committed = readFileSync(path.join(repoRoot, file), 'utf8');
    assert.ok(committed === expected, `${file} is out of date: run npm run docs`);
  }
});

test('the configuration reference covers every key of the schema, with its environment variable', async () => {
  const text = (await renderDocs())['docs/configuration.md'];
  for (const key of ['server.port', 'engine.slots', 'download.hfEndpoint', 'logging.format', 'dataDir']) assert.match(text, new RegExp(`\\| \`${key.replace('.', '\\.')}\` \\|`), key);
  assert.match(text, /\| `engine\.threads` \|.*\| `FLINT_THREADS` \|/);
  assert.match(text, /\| `download\.hfEndpoint` \|.*\| `HF_ENDPOINT`, `FLINT_HF_ENDPOINT` \|/);
});

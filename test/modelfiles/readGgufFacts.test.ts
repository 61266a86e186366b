import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { readGgufFacts } from '../../src/modelfiles/readGgufFacts.js';
import { tinyModelPath } from '../helpers/testModel.js';

const dir = mkdtempSync(path.join(tmpdir(), 'flint-gguf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a real GGUF: architecture, training context and quantization from its header', async () => {
  const facts = await readGgufFacts(await tinyModelPath());
  assert.deepEqual([facts.version, facts.architecture, facts.contextLength, facts.quantization], [3, 'qwen2', 4096, 'F32']);
});

test('refused: another format, a GGUF version llama.cpp does not read', async () => {
  const html = path.join(dir, 'page.gguf');
  writeFileSync(html, '<html>rate limited</html>');
  await assert.rejects(readGgufFacts(html), /does not start with "GGUF" but with "<htm"/);
  const future = path.join(dir, 'v9.gguf');
  const header = Buffer.alloc(24);
  header.write('GGUF', 0, 'latin1');
  header.writeUInt32LE(9, 4);
  writeFileSync(future, header);
  await assert.rejects(readGgufFacts(future), /GGUF version 9 \(llama\.cpp reads versions 2 and 3\)/);
});

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LlamaText, SpecialTokensText } from 'node-llama-cpp';
import { tokenizeLlamaText } from '../../src/worker/tokenizeInChunks.js';
import { useTestModel } from '../helpers/engine.js';
import { repoRoot, tinyModelPath } from '../helpers/testModel.js';

const tiny = useTestModel(tinyModelPath);

/** Real code and prose: the synthesizer's corpus, concatenated to well over one chunk. */
function corpus(): string {
  const dir = path.join(repoRoot, 'src', 'synth', 'corpus');
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.txt'));
  return files.map((f) => readFileSync(path.join(f.parentPath, f.name), 'utf8')).join('\n');
}

test('chunked tokenization gives exactly the tokens of tokenizing whole', async () => {
  const text = corpus();
  assert.ok(text.length > 200_000);
  const rendered = LlamaText([new SpecialTokensText('<|im_start|>user\n'), text, new SpecialTokensText('<|im_end|>\n<|im_start|>assistant\n'), text.slice(0, 90_000)]);
  const whole = rendered.tokenize(tiny.model().tokenizer);
  const chunked = await tokenizeLlamaText(rendered, tiny.model().tokenizer, new AbortController().signal);
  assert.equal(chunked.length, whole.length);
  assert.deepEqual(chunked, whole);
});

test('an abort stops tokenizing between chunks', async () => {
  const controller = new AbortController();
  const run = tokenizeLlamaText(LlamaText([corpus()]), tiny.model().tokenizer, controller.signal);
  controller.abort();
  await assert.rejects(run, { name: 'AbortError' });
});

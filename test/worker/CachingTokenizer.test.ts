import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getLlama, resolveChatWrapper, type ChatHistoryItem, type Llama, type LlamaModel } from 'node-llama-cpp';
import { createCachingTokenizer } from '../../src/worker/CachingTokenizer.js';
import { tinyModelPath } from '../helpers/testModel.js';

let llama: Llama;
let model: LlamaModel;
before(async () => {
  llama = await getLlama({ gpu: false, build: 'never' });
  model = await llama.loadModel({ modelPath: await tinyModelPath() });
});
after(async () => {
  await model?.dispose();
  await llama?.dispose();
});

test('a growing conversation tokenizes exactly as without the cache, turn after turn', () => {
  const wrapper = resolveChatWrapper(model);
  const cached = createCachingTokenizer(model);
  const history: ChatHistoryItem[] = [{ type: 'system', text: 'export function helper(value: number): number { return value * 2; }\n'.repeat(20) }];
  for (let turn = 0; turn < 6; turn++) {
    history.push({ type: 'user', text: `Turn ${turn}: ` + 'rename the variable and keep the tests green. '.repeat(8) });
    const text = wrapper.generateContextState({ chatHistory: [...history, { type: 'model', response: [] }] }).contextText;
    assert.deepEqual(text.tokenize(cached), text.tokenize(model.tokenizer), `turn ${turn}`);
    history.push({ type: 'model', response: ['const renamed = helper(2);\n'.repeat(12)] });
  }
  assert.deepEqual(cached('<|im_start|>', true), model.tokenizer('<|im_start|>', true));
  assert.equal(cached.detokenize(cached('héllo wörld', false)), 'héllo wörld');
});

import path from 'node:path';
import { userHistory } from './lib/conversation.js';
import { nonce, textOfTokens } from './lib/prompts.js';
import { RawEngine, rawGenerate, commonPrefix } from './lib/rawEngine.js';
import { ensureSyntheticModel } from '../src/synth/ensureSyntheticModel.js';
const modelPath = await ensureSyntheticModel({ preset: 'qwen2.5-0.5b', dir: path.resolve('models') });
const raw = await RawEngine.load({ modelPath, gpu: 'off', threads: 1 });
const ctx = await raw.createContext(8192, 1); const seq = ctx.getSequence();
const h = userHistory(textOfTokens(nonce(), 1024, raw.tokenizer));
const c = await rawGenerate(raw, seq, h, { maxTokens: 2, reuse: true });
console.log('cold engine ttft', c.engineTtftMs.toFixed(1));
for (let i = 0; i < 3; i++) {
  const r = await rawGenerate(raw, seq, h, { maxTokens: 2, reuse: true });
  console.log('warm via rawGenerate', r.engineTtftMs.toFixed(1), 'cached', r.cachedTokens, 'render', r.renderMs.toFixed(1));
}
const tokens = raw.render(h);
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const cached = Math.min(commonPrefix(seq.contextTokens, tokens), tokens.length - 1);
  const t1 = performance.now();
  await seq.eraseContextTokenRanges([{ start: cached, end: seq.nextTokenIndex }]);
  const t2 = performance.now();
  let t3 = 0; let n = 0;
  for await (const _ of seq.evaluate(tokens.slice(cached), { temperature: 0 })) { if (!t3) t3 = performance.now(); if (++n >= 2) break; }
  const t4 = performance.now();
  console.log(`manual: prefix ${(t1 - t0).toFixed(2)} erase ${(t2 - t1).toFixed(2)} first ${(t3 - t2).toFixed(1)} second ${(t4 - t3).toFixed(1)}`);
}
for (let i = 0; i < 2; i++) {
  const cached = tokens.length - 1;
  await seq.eraseContextTokenRanges([{ start: cached, end: seq.nextTokenIndex }]);
  const t2 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(tokens.slice(cached));
  console.log('evaluateWithoutGenerating 1 token', (performance.now() - t2).toFixed(1));
}
process.exit(0);

/**
 * `npm run bench`: Flint's chat endpoint against node-llama-cpp called directly, on the same
 * generated model and thread count, in one run. Runs are interleaved (raw, gateway, raw, ...)
 * and reported as medians with min/max, plus the gateway/raw ratio.
 *
 *   npm run bench -- [--preset tiny|small|qwen2.5-0.5b] [--threads N] [--tokens N] [--runs N] [--json FILE]
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getLlama, resolveChatWrapper, type LlamaModel, type Token } from 'node-llama-cpp';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/loadConfig.js';
import { ensureSyntheticModel } from '../src/synth/ensureSyntheticModel.js';
import { isPresetName } from '../src/synth/presets.js';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'tiny' },
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '5' },
    'prompt-words': { type: 'string', default: '60' },
    json: { type: 'string' },
  },
});
if (!isPresetName(values.preset)) throw new Error(`unknown preset ${values.preset}`);
const preset = values.preset;
const threads = Number(values.threads);
const maxTokens = Number(values.tokens);
const runs = Number(values.runs);
const repoRoot = path.resolve(import.meta.dirname, '..');
const modelPath = await ensureSyntheticModel({ preset, dir: path.join(repoRoot, 'models') });

interface Sample {
  ttftMs: number;
  decodeTokPerS: number;
  tokens: number;
}

const words = 'function parse value return const let index result buffer token stream cache slot worker'.split(' ');
function prompt(run: number): string {
  // A fresh first word every run so neither side can reuse a cached prefix: this measures cold TTFT.
  const body = Array.from({ length: Number(values['prompt-words']) }, (_, i) => words[(i * 7 + run) % words.length]).join(' ');
  return `run ${run} ${Math.random().toString(36).slice(2)}: ${body}`;
}

// --- raw node-llama-cpp, in this process -------------------------------------------------------
const llama = await getLlama({ gpu: false, maxThreads: 0, build: 'never' });
const model: LlamaModel = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 4096, sequences: 1, threads });
const sequence = context.getSequence();
const wrapper = resolveChatWrapper(model);

async function rawRun(text: string): Promise<Sample> {
  await sequence.clearHistory();
  const started = performance.now();
  const state = wrapper.generateContextState({ chatHistory: [{ type: 'user', text }, { type: 'model', response: [] }] });
  const tokens: Token[] = state.contextText.tokenize(model.tokenizer);
  let first = 0;
  let n = 0;
  for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
    model.detokenize([token]);
    if (n === 0) first = performance.now();
    if (++n >= maxTokens) break;
  }
  const end = performance.now();
  return { ttftMs: first - started, decodeTokPerS: n > 1 ? (n - 1) / ((end - first) / 1000) : 0, tokens: n };
}

// --- Flint over HTTP + SSE ---------------------------------------------------------------------
const { config } = loadConfig({
  env: { FLINT_MODEL: modelPath, FLINT_PORT: '0', FLINT_THREADS: String(threads), FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '4096', FLINT_LOG_LEVEL: 'warn' },
});
const app = await createApp(config);
const url = await app.listen();

async function gatewayRun(text: string): Promise<Sample> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: text }], max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  let first = 0;
  let last = 0;
  let tokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let at: number;
    while ((at = buffer.indexOf('\n\n')) !== -1) {
      const frame = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (!frame.startsWith('data: {')) continue;
      const data = JSON.parse(frame.slice(6)) as { choices: Array<{ delta: { content?: string } }>; usage?: { completion_tokens: number } | null };
      if (data.choices[0]?.delta.content) {
        last = performance.now();
        if (first === 0) first = last;
      }
      if (data.usage) tokens = data.usage.completion_tokens;
    }
  }
  return { ttftMs: first - started, decodeTokPerS: tokens > 1 ? (tokens - 1) / ((last - first) / 1000) : 0, tokens };
}

const raw: Sample[] = [];
const gateway: Sample[] = [];
await rawRun(prompt(-1)); // warm-up both sides once
await gatewayRun(prompt(-2));
for (let i = 0; i < runs; i++) {
  raw.push(await rawRun(prompt(i * 2)));
  gateway.push(await gatewayRun(prompt(i * 2 + 1)));
}
await app.close();
await context.dispose();
await model.dispose();
await llama.dispose();

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
};
const result = {
  preset,
  threads,
  maxTokens,
  runs,
  raw: { ttftMs: stats(raw.map((r) => r.ttftMs)), decodeTokPerS: stats(raw.map((r) => r.decodeTokPerS)), tokens: stats(raw.map((r) => r.tokens)) },
  gateway: { ttftMs: stats(gateway.map((r) => r.ttftMs)), decodeTokPerS: stats(gateway.map((r) => r.decodeTokPerS)), tokens: stats(gateway.map((r) => r.tokens)) },
};
const ratio = {
  decode: result.gateway.decodeTokPerS.median / result.raw.decodeTokPerS.median,
  ttft: result.gateway.ttftMs.median / result.raw.ttftMs.median,
};
const f = (x: { median: number; min: number; max: number }, d = 1) => `${x.median.toFixed(d)} (${x.min.toFixed(d)}–${x.max.toFixed(d)})`;
const table = [
  `### ${preset}, threads ${threads}, ${maxTokens} tokens, ${runs} runs (median, min–max)`,
  '',
  '| path | TTFT ms | decode tok/s | tokens |',
  '| --- | --- | --- | --- |',
  `| node-llama-cpp direct | ${f(result.raw.ttftMs, 2)} | ${f(result.raw.decodeTokPerS)} | ${f(result.raw.tokens, 0)} |`,
  `| Flint /v1/chat/completions (SSE) | ${f(result.gateway.ttftMs, 2)} | ${f(result.gateway.decodeTokPerS)} | ${f(result.gateway.tokens, 0)} |`,
  `| ratio gateway/raw | ${ratio.ttft.toFixed(2)}x | ${ratio.decode.toFixed(3)}x | |`,
  '',
].join('\n');
process.stdout.write(table + '\n');
mkdirSync(path.join(repoRoot, 'bench', 'results'), { recursive: true });
const out = values.json ?? path.join(repoRoot, 'bench', 'results', `chat-${preset}-t${threads}.json`);
writeFileSync(out, JSON.stringify({ ...result, ratio, date: new Date().toISOString() }, null, 2));
writeFileSync(out.replace(/\.json$/, '.md'), table);

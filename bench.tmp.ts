import {getLlama, LlamaLogLevel, resolveChatWrapper} from "node-llama-cpp";
const path = process.argv[2];
let t = performance.now();
const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.warn, logger: (level, msg) => console.log("[llama]", level, msg.trimEnd())});
console.log("getLlama ms", (performance.now() - t).toFixed(0));
t = performance.now();
const model = await llama.loadModel({modelPath: path});
console.log("load ms", (performance.now() - t).toFixed(0), "vocab", model.fileInfo.metadata.tokenizer.ggml.tokens.length, "wrapper", resolveChatWrapper(model).wrapperName);
const prompt = model.tokenize("<|im_start|>user\nWrite a TypeScript function that parses a CSV line.<|im_end|>\n<|im_start|>assistant\n", true);
for (const threads of [1, 2]) {
  const ctx = await model.createContext({contextSize: 2048, threads});
  const seq = ctx.getSequence();
  const runs: string[] = [];
  for (let rep = 0; rep < 2; rep++) {
    await seq.clearHistory();
    const N = Number(process.argv[3] ?? 128);
    let first = 0; const out: number[] = [];
    const t0 = performance.now();
    for await (const tok of seq.evaluate(prompt, {temperature: 0})) { if (out.length === 0) first = performance.now(); out.push(tok); if (out.length >= N) break; }
    const t1 = performance.now();
    runs.push(`prefill+1st ${(first - t0).toFixed(0)}ms, decode ${((out.length - 1) / (t1 - first) * 1000).toFixed(1)} tok/s, distinct ${new Set(out).size}/${out.length}, eog ${out.some(x => model.isEogToken(x))}`);
    if (rep === 0 && threads === 1) console.log(JSON.stringify(model.detokenize(out.slice(0, 48))));
  }
  console.log(`threads ${threads}:`, runs.join(" | "));
  await ctx.dispose();
}
await llama.dispose();

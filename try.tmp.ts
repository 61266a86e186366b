import {synthesizeModel} from "./src/synth/synthesizeModel.js";
import {getLlama, readGgufFileInfo, resolveChatWrapper, LlamaLogLevel} from "node-llama-cpp";
const preset = (process.argv[2] ?? "tiny") as any;
let t = performance.now();
const r = await synthesizeModel({preset, outPath: `/tmp/synth/${preset}.gguf`});
console.log("synth", r, (performance.now() - t).toFixed(0), "ms");
const info = await readGgufFileInfo(r.path);
console.log(info.metadata.general, info.metadata.qwen2, info.tensorInfo?.length);
t = performance.now();
const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.warn, logger: (level, msg) => console.log("[llama]", level, msg.trimEnd())});
console.log("getLlama", (performance.now() - t).toFixed(0));
t = performance.now();
const model = await llama.loadModel({modelPath: r.path});
console.log("load", (performance.now() - t).toFixed(0));
for (const text of ["export async function main(): Promise<void> {\n    const x = await fetch(url);\n}", "def foo(bar):\n    return [x * 2 for x in bar if x > 0]\n", "é → ✓ 日本"]) {
  const toks = model.tokenize(text);
  console.log(text.length, toks.length, model.detokenize(toks) === text, toks.slice(0, 12).map(t => JSON.stringify(model.detokenize([t]))).join(" "));
}
console.log("special", model.tokenize("<|im_start|>user\nhi<|im_end|>", true));
console.log("eos", model.tokens.eos, model.tokens.eosString, "bos", model.tokens.bos, "infill", model.tokens.infill.prefix, model.tokens.infill.middle, model.tokens.infill.suffix);
const wrapper = resolveChatWrapper(model);
console.log("wrapper", wrapper.wrapperName, wrapper.constructor.name);
const ctx = await model.createContext({contextSize: 2048, threads: 1});
const seq = ctx.getSequence();
const prompt = model.tokenize("<|im_start|>user\nWrite a function<|im_end|>\n<|im_start|>assistant\n", true);
t = performance.now();
const out: number[] = [];
for await (const tok of seq.evaluate(prompt, {temperature: 0})) { out.push(tok); if (out.length >= 256) break; }
const dt = performance.now() - t;
console.log("greedy 256 tokens", dt.toFixed(0), "ms", (256 / dt * 1000).toFixed(0), "tok/s; distinct", new Set(out).size);
console.log(JSON.stringify(model.detokenize(out.slice(0, 64))));
await seq.clearHistory();
const out2: number[] = [];
let eogCount = 0;
for (let run = 0; run < 10; run++) {
  await seq.clearHistory();
  let n = 0;
  for await (const tok of seq.evaluate(prompt, {temperature: 0.8, seed: run} as any)) { if (model.isEogToken(tok)) { eogCount++; break; } n++; out2.push(tok); if (n >= 64) break; }
}
console.log("sampled: eog stops", eogCount, "distinct", new Set(out2).size, "of", out2.length);
console.log(JSON.stringify(model.detokenize(out2.slice(0, 64))));
await llama.dispose();

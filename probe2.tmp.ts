import {synthesizeModel} from "./src/synth/synthesizeModel.js";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
const preset = (process.argv[2] ?? "tiny") as any;
const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error});
const prompts = ["<|im_start|>user\nWrite a function<|im_end|>\n<|im_start|>assistant\n", "def main():\n", "const x = ", "<|fim_prefix|>function add(a, b) {\n<|fim_suffix|>\n}<|fim_middle|>", "# Title\n\nSome text about", "import os\nimport sys\n"];
for (const seed of [1, 2, 3]) {
  const r = await synthesizeModel({preset, outPath: `/tmp/synth/${preset}-${seed}.gguf`, seed});
  const model = await llama.loadModel({modelPath: r.path});
  const ctx = await model.createContext({contextSize: 1024, threads: 1});
  const seq = ctx.getSequence();
  const stats: string[] = [];
  let eog = 0, sampled = 0;
  for (const p of prompts) {
    await seq.clearHistory();
    const out: number[] = [];
    for await (const t of seq.evaluate(model.tokenize(p, true), {temperature: 0})) { if (model.isEogToken(t)) { out.push(-1); break; } out.push(t); if (out.length >= 64) break; }
    let maxRun = 1, run = 1; for (let i = 1; i < out.length; i++) { run = out[i] === out[i-1] ? run + 1 : 1; maxRun = Math.max(maxRun, run); }
    stats.push(`${out.length}/${new Set(out).size}/${maxRun}`);
    for (let k = 0; k < 5; k++) {
      await seq.clearHistory(); let n = 0;
      for await (const t of seq.evaluate(model.tokenize(p, true), {temperature: 0.7, seed: k * 31 + seed} as any)) { sampled++; if (model.isEogToken(t)) { eog++; break; } if (++n >= 64) break; }
    }
  }
  console.log("seed", seed, "greedy len/distinct/maxRun", stats.join(" "), "| sampled eog", eog, "of", sampled, "tokens");
  await model.dispose();
}
await llama.dispose();

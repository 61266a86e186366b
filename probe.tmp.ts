import {getLlama, LlamaLogLevel} from "node-llama-cpp";
const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: process.argv[2]});
const ctx = await model.createContext({contextSize: 512, threads: 1, sequences: 1});
const seq = ctx.getSequence();
let self1 = 0, self2 = 0, N = 300;
const nextOf = async (toks: number[]) => { await seq.clearHistory(); for await (const t of seq.evaluate(toks as any, {temperature: 0})) return t; return -1; };
for (let i = 0; i < N; i++) {
  const t = 300 + i * 7;
  if ((await nextOf([t])) === t) self1++;
  if ((await nextOf([t, t, t])) === t) self2++;
}
console.log("self-loop after 1:", self1, "/", N, " after 3 repeats:", self2, "/", N);
await llama.dispose();

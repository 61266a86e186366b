import {getLlama, LlamaLogLevel} from "node-llama-cpp";
const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.debug, logger: (level, msg) => process.stdout.write(`[${level}] ${msg}`)});
const model = await llama.loadModel({modelPath: process.argv[2]});
const ctx = await model.createContext({contextSize: 512, threads: 1});
await llama.dispose();

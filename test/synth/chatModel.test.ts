import {test} from "node:test";
import assert from "node:assert/strict";
import {getLlama, LlamaChatSession, LlamaLogLevel, readGgufFileInfo} from "node-llama-cpp";
import {presets} from "../../src/synth/presets.js";
import {chatModelPath, tinyModelPath} from "../helpers/testModel.js";

const prompts = [
    "Hello there",
    "Write a function that adds two numbers in Python",
    "What is the capital of France? Answer briefly.",
    "fix the failing test in src/main.ts",
    "Explain what this regular expression does: ^(a|b)*c$",
    "list the files in the current directory"
];
const MAX_TOKENS = 200;

/** Answers of the model at `modelPath` to every prompt, sampled with two seeds at temperature 1 and once greedily. */
async function answers(modelPath: string) {
    const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error});
    try {
        const model = await llama.loadModel({modelPath});
        const context = await model.createContext({contextSize: 2048, threads: 1});
        const out: Array<{tokens: number, ended: boolean, temperature: number}> = [];
        for (const [temperature, seed] of [[1, 1], [1, 2], [0, 0]] as const) {
            for (const prompt of prompts) {
                const session = new LlamaChatSession({contextSequence: context.getSequence()});
                let tokens = 0;
                const result = await session.promptWithMeta(prompt, {
                    maxTokens: MAX_TOKENS, temperature, seed, onToken: (chunk) => { tokens += chunk.length; }
                });
                out.push({tokens, ended: result.stopReason === "eogToken", temperature});
                session.dispose({disposeSequence: true});
            }
        }
        return {out, name: (await readGgufFileInfo(modelPath)).metadata.general.name};
    } finally {
        await llama.dispose();
    }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

test("tiny-chat ends its answers after some tokens (sampled and greedy); tiny runs on to max_tokens", async () => {
    const chat = await answers(await chatModelPath());
    assert.equal(chat.name, presets["tiny-chat"].modelName);
    const sampled = chat.out.filter((a) => a.temperature === 1);
    const greedy = chat.out.filter((a) => a.temperature === 0);
    // nearly every answer stops by itself, and answers are not empty: a few to a few dozen tokens
    assert.ok(sampled.filter((a) => a.ended).length >= sampled.length - 1, JSON.stringify(sampled));
    assert.ok(greedy.filter((a) => a.ended).length >= greedy.length - 1, JSON.stringify(greedy));
    const sampledMedian = median(sampled.map((a) => a.tokens));
    assert.ok(sampledMedian >= 3 && sampledMedian <= 120, `median sampled answer: ${sampledMedian} tokens`);
    assert.ok(median(greedy.map((a) => a.tokens)) >= 3, JSON.stringify(greedy));

    // the other presets damp <|im_end|>, so answers run on (what the throughput tests and benches rely on)
    const tiny = await answers(await tinyModelPath());
    assert.ok(tiny.out.filter((a) => a.ended).length <= 2, JSON.stringify(tiny.out));
});

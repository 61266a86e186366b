import {test} from "node:test";
import assert from "node:assert/strict";
import {createHash} from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
    getLlama, LlamaChatSession, LlamaLogLevel, LlamaText, readGgufFileInfo, resolveChatWrapper, SpecialTokensText,
    type ChatHistoryItem
} from "node-llama-cpp";
import {qwen3ThinkingChatTemplate} from "../../src/synth/chatTemplate.js";
import {presets} from "../../src/synth/presets.js";
import {synthesizeModel} from "../../src/synth/synthesizeModel.js";
import {thinkModelPath} from "../helpers/testModel.js";

async function sha256(filePath: string) {
    return createHash("sha256").update(await fs.readFile(filePath)).digest("hex");
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "flint-think-test-"));
    try {
        return await fn(dir);
    } finally {
        await fs.rm(dir, {recursive: true, force: true});
    }
}

test("tiny-think is deterministic and extends tiny's vocabulary with Qwen3's added tokens", () => withTempDir(async (dir) => {
    const a = await synthesizeModel({preset: "tiny-think", outPath: path.join(dir, "a.gguf")});
    const b = await synthesizeModel({preset: "tiny-think", outPath: path.join(dir, "b.gguf"), seed: 42});
    const tiny = await synthesizeModel({preset: "tiny", outPath: path.join(dir, "tiny.gguf")});

    assert.equal(await sha256(b.path), await sha256(a.path));
    assert.equal(await sha256(await thinkModelPath()), await sha256(a.path));
    assert.equal(a.trainedVocabSize, tiny.trainedVocabSize);
    assert.equal(a.vocabSize, tiny.vocabSize + 4);

    const {metadata} = await readGgufFileInfo(a.path);
    const tinyMetadata = (await readGgufFileInfo(tiny.path)).metadata;
    const {tokens, token_type: tokenTypes} = metadata.tokenizer!.ggml;
    assert.equal(metadata.general.name, presets["tiny-think"].modelName);
    assert.equal(metadata.general.architecture, "qwen2");

    // Qwen2.5's tokens keep their ids; Qwen3's follow <|file_sep|> in their real order, typed USER_DEFINED like <tool_call>
    assert.deepEqual(tokens.slice(0, tiny.vocabSize), tinyMetadata.tokenizer!.ggml.tokens);
    assert.equal(tokens[tiny.vocabSize - 1], "<|file_sep|>");
    assert.deepEqual(tokens.slice(tiny.vocabSize), ["<tool_response>", "</tool_response>", "<think>", "</think>"]);
    assert.deepEqual([...tokenTypes.slice(tiny.vocabSize)], [4, 4, 4, 4]);
    assert.equal(tokenTypes[tokens.indexOf("<tool_call>")], 4);
    assert.equal(tokens[metadata.tokenizer!.ggml.eos_token_id!], "<|im_end|>");

    // the template opens the thought in the generation prompt, as Qwen3-*-Thinking-2507 does
    const template = metadata.tokenizer!.chat_template!;
    assert.equal(template, qwen3ThinkingChatTemplate);
    assert.match(template, /\{%- if add_generation_prompt %\}\n {4}\{\{- '<\|im_start\|>assistant\\n<think>\\n' \}\}\n\{%- endif %\}\n$/);
    assert.match(template, /'\\n<think>\\n' \+ reasoning_content\.strip\('\\n'\) \+ '\\n<\/think>\\n\\n' \+ content/);
    assert.notEqual(tinyMetadata.tokenizer!.chat_template, template);
}));

test("tiny-think: <think> tokens, thought segment settings and a chat that starts inside the thought", async () => {
    const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error});
    try {
        const model = await llama.loadModel({modelPath: await thinkModelPath()});
        try {
            const think = model.tokenize("<think>", true);
            const endThink = model.tokenize("</think>", true);
            assert.equal(think.length, 1);
            assert.equal(endThink.length, 1);
            assert.notEqual(think[0], endThink[0]);
            const newline = model.tokenize("\n", true);
            assert.deepEqual(LlamaText(new SpecialTokensText("<think>\n")).tokenize(model.tokenizer), [...think, ...newline]);
            assert.deepEqual(LlamaText(new SpecialTokensText("\n</think>")).tokenize(model.tokenizer), [...newline, ...endThink]);

            // node-llama-cpp finds the thought segment in the template and that its generation prompt opens it
            const wrapper = resolveChatWrapper(model);
            const thought = wrapper.settings.segments?.thought;
            assert.ok(thought != null, `no thought segment in chat wrapper ${wrapper.wrapperName}`);
            assert.equal(LlamaText(thought.prefix as LlamaText).toString(), "<think>\n");
            assert.match(LlamaText(thought.suffix!).toString(), /^\n<\/think>/);
            assert.equal(thought.openOnResponseStart, true);

            const chatHistory: ChatHistoryItem[] = [
                {type: "user", text: "hi"},
                {type: "model", response: [{type: "segment", segmentType: "thought", text: "hmm", ended: true}, "hello"]}
            ];
            assert.equal(
                wrapper.generateContextState({chatHistory}).contextText.toString(),
                "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nhello"
            );

            const context = await model.createContext({contextSize: 512, threads: 1});
            try {
                const sequence = context.getSequence();
                const session = new LlamaChatSession({contextSequence: sequence, chatWrapper: wrapper, systemPrompt: "s"});
                const {response} = await session.promptWithMeta("Say hi", {maxTokens: 8, temperature: 0});
                // the model is fed `<think>\n` (as tokens) after the assistant header, then generates the thought
                const prompt = model.tokenize("<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n", true);
                assert.ok(sequence.contextTokens.length > prompt.length + 2, "nothing was generated");
                assert.deepEqual(sequence.contextTokens.slice(0, prompt.length + 2), [...prompt, ...think, ...newline]);
                const first = response[0];
                assert.ok(typeof first !== "string" && first.type === "segment" && first.segmentType === "thought");
            } finally {
                await context.dispose();
            }
        } finally {
            await model.dispose();
        }
    } finally {
        await llama.dispose();
    }
});

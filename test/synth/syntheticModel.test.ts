import {after, before, describe, test} from "node:test";
import assert from "node:assert/strict";
import {createHash} from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
    ChatMLChatWrapper, getLlama, JinjaTemplateChatWrapper, LlamaChatSession, LlamaLogLevel, QwenChatWrapper,
    readGgufFileInfo, resolveChatWrapper, type ChatHistoryItem, type Llama, type LlamaModel, type Token
} from "node-llama-cpp";
import {ensureSyntheticModel} from "../../src/synth/ensureSyntheticModel.js";
import {synthesizeModel} from "../../src/synth/synthesizeModel.js";
import {presets} from "../../src/synth/presets.js";
import {SYNTH_VERSION} from "../../src/synth/synthVersion.js";

const codeSamples = [
    "export async function loadConfig(path: string): Promise<Config> {\n" +
    "    const text = await fs.readFile(path, \"utf8\");\n" +
    "    return JSON.parse(text) as Config;\n" +
    "}\n",
    "def parse_args(argv):\n" +
    "    parser = argparse.ArgumentParser(description=\"Run the server\")\n" +
    "    parser.add_argument(\"--port\", type=int, default=8080)\n" +
    "    return parser.parse_args(argv)\n",
    "for (let i = 0; i < items.length; i++) {\n    if (items[i] == null) continue;\n    result.push(items[i].name);\n}\n"
];

async function sha256(filePath: string) {
    return createHash("sha256").update(await fs.readFile(filePath)).digest("hex");
}

describe("synthetic tiny model", () => {
    let dir: string;
    let modelPath: string;
    let llama: Llama;
    let model: LlamaModel;

    before(async () => {
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "flint-synth-test-"));
        modelPath = await ensureSyntheticModel({preset: "tiny", dir});
        llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error});
        model = await llama.loadModel({modelPath});
    });

    after(async () => {
        await model?.dispose();
        await llama?.dispose();
        if (dir != null)
            await fs.rm(dir, {recursive: true, force: true});
    });

    test("ensureSyntheticModel names the file by preset, seed and version, and reuses it", async () => {
        assert.equal(path.basename(modelPath), `flint-tiny-s42-v${SYNTH_VERSION}.gguf`);
        const {mtimeMs} = await fs.stat(modelPath);
        assert.equal(await ensureSyntheticModel({preset: "tiny", dir}), modelPath);
        assert.equal((await fs.stat(modelPath)).mtimeMs, mtimeMs);
        // no temp files are left behind
        assert.deepEqual(await fs.readdir(dir), [path.basename(modelPath)]);
    });

    test("GGUF metadata and tensor infos read back with node-llama-cpp", async () => {
        const info = await readGgufFileInfo(modelPath);
        const preset = presets.tiny;
        const {metadata} = info;

        assert.equal(info.version, 3);
        assert.equal(metadata.general.architecture, "qwen2");
        assert.equal(metadata.general.alignment, 32);
        assert.equal(metadata.general.name, preset.modelName);
        assert.deepEqual(info.architectureMetadata, {
            block_count: 2,
            context_length: 4096,
            embedding_length: 64,
            feed_forward_length: preset.feedForwardLength,
            attention: {head_count: 4, head_count_kv: 2, layer_norm_rms_epsilon: Math.fround(1e-6)},
            rope: {freq_base: 1000000}
        });

        const tokenizer = metadata.tokenizer!;
        const {tokens, token_type: tokenTypes, merges = []} = tokenizer.ggml;
        assert.equal(tokenizer.ggml.model, "gpt2");
        assert.equal(tokenizer.ggml.pre, "qwen2");
        assert.ok(tokens.length >= 2000 && tokens.length <= 4100, `vocabulary of ${tokens.length} tokens`);
        assert.equal(tokenTypes.length, tokens.length);
        assert.equal(merges.length, preset.trainedVocabSize - 256);
        assert.equal(tokens[tokenizer.ggml.eos_token_id!], "<|im_end|>");
        assert.equal(tokens[tokenizer.ggml.bos_token_id!], "<|endoftext|>");
        assert.equal(tokens[tokenizer.ggml.padding_token_id!], "<|endoftext|>");
        assert.equal(tokenizer.ggml.add_bos_token, false);
        assert.equal(tokenTypes[tokens.indexOf("<|im_start|>")], 3);
        assert.equal(tokenTypes[tokens.indexOf("<tool_call>")], 4);
        assert.match(tokenizer.chat_template!, /<\|im_start\|>/);

        const tensors = new Map(info.tensorInfo!.map((tensor) => [tensor.name, tensor]));
        assert.equal(tensors.size, 2 + 2 * 12); // token_embd + output_norm + 12 per block; tied: no output.weight
        assert.deepEqual(tensors.get("token_embd.weight")!.dimensions.map(Number), [64, tokens.length]);
        assert.deepEqual(tensors.get("blk.1.attn_k.weight")!.dimensions.map(Number), [64, 32]);
        assert.deepEqual(tensors.get("blk.0.ffn_down.weight")!.dimensions.map(Number), [preset.feedForwardLength, 64]);
        assert.equal(tensors.has("output.weight"), false);
        for (const tensor of tensors.values())
            assert.equal(Number(tensor.fileOffset) % 32, 0, `${tensor.name} is aligned`);
    });

    test("tokenizes code into multi-character tokens and round-trips text exactly", () => {
        for (const text of codeSamples) {
            const tokens = model.tokenize(text);
            assert.ok(tokens.length * 2.5 <= text.length, `${tokens.length} tokens for ${text.length} chars`);
            assert.equal(model.detokenize(tokens), text);
        }

        for (const text of ["é → ✓ 日本", "  trailing spaces\t\n\n", "emoji 🚀 and \u0000 control", "<|im_start|> as plain text"])
            assert.equal(model.detokenize(model.tokenize(text)), text);
    });

    test("special tokens: ChatML tokens, FIM tokens and EOS", () => {
        const imStart = model.tokenize("<|im_start|>", true);
        const imEnd = model.tokenize("<|im_end|>", true);
        assert.equal(imStart.length, 1);
        assert.equal(imEnd.length, 1);
        assert.ok(model.tokenize("<|im_start|>", false).length > 1, "plain text must not produce the special token");

        assert.equal(model.tokens.eos, imEnd[0]);
        assert.equal(model.tokens.eosString, "<|im_end|>");
        assert.equal(model.isEogToken(imEnd[0]), true);
        assert.equal(model.isEogToken(model.tokenize("<|endoftext|>", true)[0]), true);

        const {prefix, middle, suffix} = model.tokens.infill;
        assert.notEqual(prefix, null);
        assert.notEqual(middle, null);
        assert.notEqual(suffix, null);
        assert.equal(model.tokens.infill.prefixString, "<|fim_prefix|>");
        assert.equal(model.tokens.infill.middleString, "<|fim_middle|>");
        assert.equal(model.tokens.infill.suffixString, "<|fim_suffix|>");
    });

    test("the chat template resolves to the Qwen (ChatML) chat wrapper and renders ChatML", () => {
        const wrapper = resolveChatWrapper(model);
        assert.ok(
            wrapper instanceof QwenChatWrapper || wrapper instanceof ChatMLChatWrapper,
            `unexpected chat wrapper ${wrapper.wrapperName}`
        );

        const chatHistory: ChatHistoryItem[] = [
            {type: "system", text: "You are a coding assistant."},
            {type: "user", text: "Write hello world in Go."},
            {type: "model", response: []}
        ];
        const jinja = new JinjaTemplateChatWrapper({
            template: model.fileInfo.metadata.tokenizer!.chat_template!,
            tokenizer: model.tokenizer
        });
        for (const chatWrapper of [wrapper, jinja]) {
            const rendered = chatWrapper.generateContextState({chatHistory}).contextText.toString();
            assert.match(rendered, /<\|im_start\|>system\nYou are a coding assistant\.<\|im_end\|>\n/);
            assert.match(rendered, /<\|im_start\|>user\nWrite hello world in Go\.<\|im_end\|>\n/);
            assert.match(rendered, /<\|im_start\|>assistant\n$/);
        }
    });

    test("greedy generation is deterministic and not degenerate", async () => {
        const context = await model.createContext({contextSize: 512, threads: 1});
        try {
            const sequence = context.getSequence();
            const prompt = model.tokenize("<|im_start|>user\nWrite a sort function<|im_end|>\n<|im_start|>assistant\n", true);

            const generate = async () => {
                await sequence.clearHistory();
                const tokens: Token[] = [];
                for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
                    if (model.isEogToken(token))
                        break;

                    tokens.push(token);
                    if (tokens.length === 32)
                        break;
                }
                return tokens;
            };

            const first = await generate();
            const second = await generate();
            assert.equal(first.length, 32, "the random model should not stop right away");
            assert.deepEqual(second, first);
            assert.ok(new Set(first).size >= 8, `only ${new Set(first).size} distinct tokens`);
        } finally {
            await context.dispose();
        }
    });

    test("a chat session produces a (gibberish) answer", async () => {
        const context = await model.createContext({contextSize: 512, threads: 1});
        try {
            const session = new LlamaChatSession({contextSequence: context.getSequence()});
            const answer = await session.prompt("Say hi", {maxTokens: 16, temperature: 0.8, seed: 1});
            assert.equal(typeof answer, "string");
            assert.ok(answer.length > 0);
        } finally {
            await context.dispose();
        }
    });

    test("same seed gives identical bytes, another seed different bytes", async () => {
        const a = await synthesizeModel({preset: "tiny", outPath: path.join(dir, "a.gguf")});
        const b = await synthesizeModel({preset: "tiny", outPath: path.join(dir, "b.gguf"), seed: 42});
        const c = await synthesizeModel({preset: "tiny", outPath: path.join(dir, "c.gguf"), seed: 7});

        assert.equal(a.bytes, (await fs.stat(a.path)).size);
        assert.equal(a.vocabSize, model.fileInfo.metadata.tokenizer!.ggml.tokens.length);
        assert.equal(a.trainedVocabSize, presets.tiny.trainedVocabSize);
        assert.equal(await sha256(a.path), await sha256(modelPath));
        assert.equal(await sha256(b.path), await sha256(a.path));
        assert.notEqual(await sha256(c.path), await sha256(a.path));
        assert.equal(c.bytes, a.bytes); // only weights differ, not the layout
    });
});

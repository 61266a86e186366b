import fs from "node:fs/promises";
import path from "node:path";
import {randomBytes} from "node:crypto";
import {trainBpe} from "./bpe/trainBpe.js";
import {buildVocabulary, type SynthVocabulary} from "./buildVocabulary.js";
import {qwen25ChatTemplate, qwen3ThinkingChatTemplate} from "./chatTemplate.js";
import {GgufWriter} from "./gguf/GgufWriter.js";
import {loadCorpus} from "./loadCorpus.js";
import {presets, type PresetName, type SynthPreset} from "./presets.js";
import {qwen2Tensors} from "./qwen2Tensors.js";

/** Seed used when none is given. */
export const DEFAULT_SYNTH_SEED = 42;

/** llama.cpp `general.file_type` values (`enum llama_ftype`) for the presets' weight types. */
const fileTypes: Record<SynthPreset["weightType"], number> = {f32: 0, f16: 1, q8_0: 7};

/** Result of {@link synthesizeModel}. */
export type SynthesizeModelResult = {
    /** The model's file (the first part of a split model). */
    path: string,

    /** Every file written, in part order (just `path` unless split). */
    parts: string[],
    bytes: number,

    /** Total vocabulary size: trained tokens + special tokens (+ padding). */
    vocabSize: number,

    /** Number of tokens learned by BPE (256 byte tokens included). */
    trainedVocabSize: number
};

/**
 * Writes a qwen2 GGUF with seeded random weights and a real byte-level BPE tokenizer trained on the shipped corpus.
 * Deterministic: the same preset and seed always give byte-identical files.
 * The file is written next to `outPath` under a temporary name and renamed into place once complete.
 */
export async function synthesizeModel(options: {
    preset: PresetName,
    outPath: string,
    seed?: number,

    /** Write the model as this many split files (`<base>-00001-of-0000N.gguf`, ...) as llama.cpp's gguf-split does. */
    splitParts?: number
}): Promise<SynthesizeModelResult> {
    const {preset: presetName, outPath, seed = DEFAULT_SYNTH_SEED, splitParts} = options;
    const preset = presets[presetName];
    if (preset == null)
        throw new Error(`Unknown synthetic model preset: ${presetName}`);
    else if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
        throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);

    const training = trainBpe(await loadCorpus(), {vocabSize: preset.trainedVocabSize});
    const vocabulary = buildVocabulary(training, preset.paddedVocabSize, {thinking: preset.thinking});

    const tensors = [...qwen2Tensors(preset, vocabulary, seed)];
    const partCount = splitParts ?? 1;
    if (!Number.isInteger(partCount) || partCount < 1 || partCount > tensors.length)
        throw new RangeError(`splitParts must be an integer in [1, ${tensors.length}], got ${splitParts}`);

    // like llama.cpp's gguf-split: the first part carries all metadata, every part its share of the tensors
    // and the split keys (llama.cpp reads them as uint16/int32), named <base>-0000i-of-0000N.gguf
    const writers: GgufWriter[] = [];
    for (let part = 0; part < partCount; part++) {
        const writer = new GgufWriter({alignment: 32});
        if (part === 0)
            addMetadata(writer, preset, vocabulary);
        if (partCount > 1) {
            writer
                .addUint16("split.no", part)
                .addUint16("split.count", partCount)
                .addInt32("split.tensors.count", tensors.length);
        }
        const first = Math.floor(part * tensors.length / partCount);
        const end = Math.floor((part + 1) * tensors.length / partCount);
        for (const tensor of tensors.slice(first, end))
            writer.addTensor(tensor);
        writers.push(writer);
    }
    const partPaths = partCount === 1 ? [outPath] : writers.map((_, part) => splitPartPath(outPath, part + 1, partCount));

    await fs.mkdir(path.dirname(outPath), {recursive: true});

    let bytes = 0;
    for (const [part, writer] of writers.entries())
        bytes += await writeAtomically(writer, partPaths[part]);

    return {
        path: partPaths[0],
        parts: partPaths,
        bytes,
        vocabSize: vocabulary.tokens.length,
        trainedVocabSize: vocabulary.trainedVocabSize
    };
}

/** `dir/name.gguf` → `dir/name-0000i-of-0000N.gguf`, llama.cpp's split naming. */
function splitPartPath(outPath: string, part: number, parts: number) {
    const base = outPath.replace(/\.gguf$/i, "");
    return `${base}-${String(part).padStart(5, "0")}-of-${String(parts).padStart(5, "0")}.gguf`;
}

/** Writes next to `filePath` under a temporary name and renames it into place once complete. */
async function writeAtomically(writer: GgufWriter, filePath: string) {
    // a unique temporary name, so concurrent writers (even in other processes) never share a file
    const tempPath = path.join(
        path.dirname(filePath),
        `.${path.basename(filePath)}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`
    );
    try {
        const bytes = await writer.writeFile(tempPath);
        await fs.rename(tempPath, filePath);
        return bytes;
    } catch (err) {
        await fs.rm(tempPath, {force: true});
        throw err;
    }
}

function addMetadata(writer: GgufWriter, preset: SynthPreset, vocabulary: SynthVocabulary) {
    // key order follows llama.cpp's convert_hf_to_gguf.py output for Qwen2.5
    writer
        .addString("general.architecture", "qwen2")
        .addString("general.type", "model")
        .addString("general.name", preset.modelName)
        .addUint32("general.alignment", writer.alignment)
        .addUint32("qwen2.block_count", preset.blockCount)
        .addUint32("qwen2.context_length", preset.contextLength)
        .addUint32("qwen2.embedding_length", preset.embeddingLength)
        .addUint32("qwen2.feed_forward_length", preset.feedForwardLength)
        .addUint32("qwen2.attention.head_count", preset.headCount)
        .addUint32("qwen2.attention.head_count_kv", preset.headCountKv)
        .addFloat32("qwen2.rope.freq_base", preset.ropeFreqBase)
        .addFloat32("qwen2.attention.layer_norm_rms_epsilon", preset.rmsEpsilon)
        .addUint32("general.file_type", fileTypes[preset.weightType])
        .addString("tokenizer.ggml.model", "gpt2")
        .addString("tokenizer.ggml.pre", "qwen2")
        .addStringArray("tokenizer.ggml.tokens", vocabulary.tokens)
        .addInt32Array("tokenizer.ggml.token_type", vocabulary.tokenTypes)
        .addStringArray("tokenizer.ggml.merges", vocabulary.merges)
        // like Qwen2.5-*-Instruct GGUFs: EOS is <|im_end|> so chats stop at the end of the assistant turn
        .addUint32("tokenizer.ggml.eos_token_id", vocabulary.imEndId)
        .addUint32("tokenizer.ggml.padding_token_id", vocabulary.endOfTextId)
        .addUint32("tokenizer.ggml.bos_token_id", vocabulary.endOfTextId)
        .addBool("tokenizer.ggml.add_bos_token", false)
        .addString("tokenizer.chat_template", preset.thinking === true ? qwen3ThinkingChatTemplate : qwen25ChatTemplate);

    if (preset.weightType === "q8_0")
        writer.addUint32("general.quantization_version", 2);
}

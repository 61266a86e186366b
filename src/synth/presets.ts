/** Names of the synthetic model presets. */
export type PresetName = "tiny" | "tiny-think" | "tiny-chat" | "small" | "qwen2.5-0.5b";

/** Storage type of the 2-D weight matrices (norms and biases are always f32). */
export type SynthWeightType = "f32" | "f16" | "q8_0";

/** Shape and format of a synthetic qwen2 model. */
export type SynthPreset = {
    /** Written to `general.name`. */
    readonly modelName: string,

    /** Target size of the trained byte-level BPE vocabulary (256 byte tokens + merges). */
    readonly trainedVocabSize: number,

    /**
     * When set, the vocabulary (trained tokens + special tokens) is padded with unused `[PADn]` tokens
     * to exactly this size, like the real Qwen2.5 embedding matrices (151,936 rows).
     */
    readonly paddedVocabSize?: number,

    readonly contextLength: number,
    readonly embeddingLength: number,
    readonly blockCount: number,
    readonly feedForwardLength: number,
    readonly headCount: number,
    readonly headCountKv: number,
    readonly ropeFreqBase: number,
    readonly rmsEpsilon: number,
    readonly weightType: SynthWeightType,

    /** No `output.weight`: llama.cpp reuses `token_embd.weight` as the LM head (as in Qwen2.5-0.5B). */
    readonly tiedEmbeddings: boolean,

    /**
     * A thinking model like Qwen3-*-Thinking-2507: Qwen3's added tokens (`<tool_response>`, `</tool_response>`,
     * `<think>`, `</think>`) follow Qwen2.5's, and the chat template renders `reasoning_content` and opens the thought
     * in the generation prompt. Absent: Qwen2.5's vocabulary and template.
     */
    readonly thinking?: boolean,

    /**
     * The model ends its answers: `<|im_end|>` keeps a high logit at every position (see `qwen2Tensors`), so at
     * temperature 1 an answer runs a few dozen tokens and stops, as a chat model's do. Absent: special tokens are
     * damped and a random model rarely stops before `max_tokens`. Needs an untied LM head.
     */
    readonly endsTurns?: boolean
};

const tiny: SynthPreset = {
    modelName: "Flint Synthetic Tiny (random weights)",
    trainedVocabSize: 3072,
    contextLength: 4096,
    embeddingLength: 64,
    blockCount: 2,
    feedForwardLength: 192,
    headCount: 4,
    headCountKv: 2,
    ropeFreqBase: 1000000,
    rmsEpsilon: 1e-6,
    weightType: "f32",
    tiedEmbeddings: true
};

/** The synthetic model presets, by name. */
export const presets: Readonly<Record<PresetName, SynthPreset>> = {
    // for tests: loads in milliseconds and decodes thousands of tokens/s on one thread
    tiny,

    // like tiny, but a thinking model (Qwen3-Thinking-2507 style): for tests of reasoning/thought segments
    "tiny-think": {...tiny, modelName: "Flint Synthetic Tiny Think (random weights)", thinking: true},

    // like tiny, but its answers end (<|im_end|>) after a few dozen tokens: for clients that loop until a turn ends
    // by itself, such as Claude Code (a max_tokens stop makes it ask for more, then fail)
    "tiny-chat": {...tiny, modelName: "Flint Synthetic Tiny Chat (random weights)", tiedEmbeddings: false, endsTurns: true},

    // for quick benches: still tiny next to a real model, but with non-trivial matmuls and an untied LM head
    small: {
        modelName: "Flint Synthetic Small (random weights)",
        trainedVocabSize: 6144,
        contextLength: 8192,
        embeddingLength: 256,
        blockCount: 4,
        feedForwardLength: 768,
        headCount: 4,
        headCountKv: 2,
        ropeFreqBase: 1000000,
        rmsEpsilon: 1e-6,
        weightType: "f16",
        tiedEmbeddings: false
    },

    // the real dimensions of Qwen2.5-Coder-0.5B(-Instruct), so memory use and speed match the real model
    "qwen2.5-0.5b": {
        modelName: "Flint Synthetic Qwen2.5-Coder-0.5B (random weights)",
        trainedVocabSize: 7168,
        paddedVocabSize: 151936,
        contextLength: 32768,
        embeddingLength: 896,
        blockCount: 24,
        feedForwardLength: 4864,
        headCount: 14,
        headCountKv: 2,
        ropeFreqBase: 1000000,
        rmsEpsilon: 1e-6,
        weightType: "q8_0",
        tiedEmbeddings: true
    }
};

/** Whether `x` names a preset in {@link presets}. */
export function isPresetName(x: string): x is PresetName {
    return Object.hasOwn(presets, x);
}

import type {TrainBpeResult} from "./bpe/trainBpe.js";

/** llama.cpp token types (`enum llama_token_type`) as stored in `tokenizer.ggml.token_type`. */
export const TokenType = {
    normal: 1,
    control: 3,
    userDefined: 4,
    unused: 5
} as const;

/**
 * Qwen2.5's added tokens in their real order (ids 151643..151664 there).
 * `<tool_call>`/`</tool_call>` are not "special" in Qwen's tokenizer.json, so its GGUFs mark them USER_DEFINED.
 */
export const qwenSpecialTokens: readonly {text: string, type: number}[] = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
    "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"
].map((text) => ({
    text,
    type: text.startsWith("<|") ? TokenType.control : TokenType.userDefined
}));

/**
 * The tokens Qwen3 adds after Qwen2.5's, in their real order (ids 151665..151668 there).
 * Like `<tool_call>`, none is "special" in Qwen3's tokenizer.json, so its GGUFs mark them USER_DEFINED:
 * llama.cpp matches them as single tokens in any text, so `<think>` and `</think>` are one token each.
 */
export const qwen3ThinkingTokens: readonly {text: string, type: number}[] = [
    "<tool_response>", "</tool_response>", "<think>", "</think>"
].map((text) => ({text, type: TokenType.userDefined}));

/** The complete tokenizer of a synthetic model, ready for the `tokenizer.ggml.*` metadata. */
export type SynthVocabulary = {
    tokens: string[],
    tokenTypes: Int32Array,
    merges: string[],

    /** Tokens learned by BPE (ids `0 .. trainedVocabSize - 1`); special tokens follow them. */
    trainedVocabSize: number,

    /** First id of the `[PADn]` filler tokens (equals `tokens.length` when there are none). */
    paddingStartId: number,

    /** `<|endoftext|>`: BOS and padding, as in Qwen2.5. */
    endOfTextId: number,

    /** `<|im_end|>`: EOS of the instruct models, so chat generation stops at the end of a turn. */
    imEndId: number
};

/**
 * Appends Qwen2.5's special tokens (and with `thinking`, Qwen3's {@link qwen3ThinkingTokens} after them)
 * to the trained BPE tokens and optionally pads to `paddedVocabSize`.
 */
export function buildVocabulary(
    training: TrainBpeResult,
    paddedVocabSize?: number,
    options: {thinking?: boolean} = {}
): SynthVocabulary {
    const trainedVocabSize = training.tokens.length;
    const addedTokens = options.thinking === true
        ? [...qwenSpecialTokens, ...qwen3ThinkingTokens]
        : qwenSpecialTokens;
    const tokens = [...training.tokens, ...addedTokens.map((token) => token.text)];
    const types = [...training.tokens.map(() => TokenType.normal), ...addedTokens.map((token) => token.type)];

    const paddingStartId = tokens.length;
    if (paddedVocabSize != null) {
        if (paddedVocabSize < tokens.length)
            throw new Error(`Vocabulary of ${tokens.length} tokens does not fit the padded size ${paddedVocabSize}`);

        // same filler naming and type as llama.cpp's convert_hf_to_gguf.py uses for Qwen2.5's unused rows
        for (let id = tokens.length; id < paddedVocabSize; id++) {
            tokens.push(`[PAD${id}]`);
            types.push(TokenType.unused);
        }
    }

    // llama.cpp asserts that token texts are unique; byte-level pre-tokenization keeps letters apart from "<|",
    // so a trained token can never spell a special token, but verify rather than assume
    if (new Set(tokens).size !== tokens.length)
        throw new Error("Synthetic vocabulary has duplicate token texts");

    return {
        tokens,
        tokenTypes: Int32Array.from(types),
        merges: training.merges,
        trainedVocabSize,
        paddingStartId,
        endOfTextId: tokens.indexOf("<|endoftext|>"),
        imEndId: tokens.indexOf("<|im_end|>")
    };
}

/**
 * The pre-tokenizer regex llama.cpp uses for `tokenizer.ggml.pre = "qwen2"` (src/llama-vocab.cpp),
 * i.e. Qwen2's tokenizer.json pattern with the `(?i:...)` contractions group expanded, since
 * neither llama.cpp's regex engine nor ES2023 supports inline flags.
 * Training with the same split keeps the learned merges effective at inference time.
 */
export const QWEN2_PRETOKENIZE_PATTERN =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" +
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Counts the pre-tokens (words) of all texts, in first-seen order (which keeps training deterministic). */
export function countPreTokens(texts: Iterable<string>): Map<string, number> {
    const counts = new Map<string, number>();
    const regex = new RegExp(QWEN2_PRETOKENIZE_PATTERN, "gu");

    for (const text of texts) {
        regex.lastIndex = 0;
        for (let match = regex.exec(text); match != null; match = regex.exec(text)) {
            const word = match[0];
            counts.set(word, (counts.get(word) ?? 0) + 1);
        }
    }

    return counts;
}

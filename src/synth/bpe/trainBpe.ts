import {byteToUnicode} from "./byteToUnicode.js";
import {countPreTokens} from "./preTokenize.js";
import {PairHeap} from "./PairHeap.js";

/** Options of {@link trainBpe}. */
export type TrainBpeOptions = {
    /** Target vocabulary size, including the 256 byte tokens (at most {@link MAX_TRAINED_VOCAB_SIZE}). */
    vocabSize: number,

    /** Stop early when the most frequent pair occurs fewer times than this. Defaults to 2. */
    minFrequency?: number
};

/** Result of {@link trainBpe}: token texts in GPT-2 byte-symbol form and merges as `"left right"` strings. */
export type TrainBpeResult = {
    /** The 256 byte tokens (id = byte value), then one token per new merge result, in merge order. */
    tokens: string[],

    /** Merge rules in rank order, as llama.cpp's `tokenizer.ggml.merges` expects. */
    merges: string[]
};

/** Pair keys pack two token ids as `left * PAIR_SHIFT + right`, staying within V8's small-integer range. */
const PAIR_SHIFT = 1 << 15;

/** Largest vocabulary {@link trainBpe} supports (a limit of its pair-key packing). */
export const MAX_TRAINED_VOCAB_SIZE = PAIR_SHIFT;

/**
 * Deterministic byte-level BPE training (GPT-2 style) over pre-tokenized text.
 * Words are counted once with their frequencies; pair counts are updated incrementally
 * for the words touched by each merge; ties between equally frequent pairs go to the pair
 * with the smaller (left id, right id), so the same input always yields the same vocabulary.
 */
export function trainBpe(texts: Iterable<string>, {vocabSize, minFrequency = 2}: TrainBpeOptions): TrainBpeResult {
    if (!Number.isInteger(vocabSize) || vocabSize < 256 || vocabSize > MAX_TRAINED_VOCAB_SIZE)
        throw new RangeError(`vocabSize must be an integer in [256, ${MAX_TRAINED_VOCAB_SIZE}], got ${vocabSize}`);

    const tokens = byteToUnicode.slice();
    const tokenIds = new Map(tokens.map((token, id) => [token, id]));
    const merges: string[] = [];

    const words: number[][] = [];
    const frequencies: number[] = [];
    for (const [word, count] of countPreTokens(texts)) {
        const bytes = Buffer.from(word, "utf8");
        if (bytes.length < 2)
            continue; // single bytes have no pairs to merge

        words.push(Array.from(bytes));
        frequencies.push(count);
    }

    const pairCounts = new Map<number, number>();
    const pairWords = new Map<number, number[]>(); // may hold stale or repeated word indices; re-checked on use
    const addPairs = (wordIndex: number, symbols: number[], frequency: number, trackToken: number) => {
        const changed: number[] = [];
        for (let i = 0; i < symbols.length - 1; i++) {
            const key = symbols[i] * PAIR_SHIFT + symbols[i + 1];
            pairCounts.set(key, (pairCounts.get(key) ?? 0) + frequency);
            if (trackToken < 0 || symbols[i] === trackToken || symbols[i + 1] === trackToken) {
                let list = pairWords.get(key);
                if (list == null)
                    pairWords.set(key, list = []);

                list.push(wordIndex);
                changed.push(key);
            }
        }
        return changed;
    };

    for (let w = 0; w < words.length; w++)
        addPairs(w, words[w], frequencies[w], -1);

    const heap = new PairHeap();
    for (const [key, count] of pairCounts)
        heap.push(count, key);

    const lastVisit = new Int32Array(words.length).fill(-1);
    let mergeIndex = 0;

    while (tokens.length < vocabSize) {
        const top = heap.pop();
        if (top == null)
            break;

        const [count, key] = top;
        const current = pairCounts.get(key) ?? 0;
        if (current !== count) {
            // stale entry: counts only ever decrease for existing pairs, so re-queue the real value
            if (current > 0)
                heap.push(current, key);

            continue;
        }
        if (count < minFrequency)
            break;

        const left = Math.floor(key / PAIR_SHIFT);
        const right = key % PAIR_SHIFT;
        const mergedText = tokens[left] + tokens[right];
        merges.push(tokens[left] + " " + tokens[right]);

        // different merge paths can spell the same text ("a bc" vs "ab c"); llama.cpp needs unique token texts
        let mergedId = tokenIds.get(mergedText);
        if (mergedId == null) {
            mergedId = tokens.length;
            tokens.push(mergedText);
            tokenIds.set(mergedText, mergedId);
        }

        const changedKeys = new Set<number>();
        for (const w of pairWords.get(key) ?? []) {
            if (lastVisit[w] === mergeIndex)
                continue;

            lastVisit[w] = mergeIndex;
            const symbols = words[w];
            const merged = mergeWord(symbols, left, right, mergedId);
            if (merged == null)
                continue;

            // remove the word's old pair contributions, then add the new ones
            const frequency = frequencies[w];
            for (let i = 0; i < symbols.length - 1; i++) {
                const oldKey = symbols[i] * PAIR_SHIFT + symbols[i + 1];
                pairCounts.set(oldKey, pairCounts.get(oldKey)! - frequency);
            }
            words[w] = merged;
            for (const changedKey of addPairs(w, merged, frequency, mergedId))
                changedKeys.add(changedKey);
        }

        pairCounts.delete(key);
        pairWords.delete(key);
        for (const changedKey of changedKeys) {
            const changedCount = pairCounts.get(changedKey) ?? 0;
            if (changedCount > 0)
                heap.push(changedCount, changedKey);
        }
        mergeIndex++;
    }

    return {tokens, merges};
}

/** Applies one merge to a word left to right; returns `undefined` when the pair does not occur in it. */
function mergeWord(symbols: number[], left: number, right: number, mergedId: number): number[] | undefined {
    let result: number[] | undefined;
    for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === left && symbols[i + 1] === right) {
            result ??= symbols.slice(0, i);
            result.push(mergedId);
            i++;
        } else if (result != null)
            result.push(symbols[i]);
    }

    return result;
}

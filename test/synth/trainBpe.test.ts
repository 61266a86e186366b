import {test} from "node:test";
import assert from "node:assert/strict";
import {byteToUnicode, textToByteSymbols} from "../../src/synth/bpe/byteToUnicode.js";
import {countPreTokens} from "../../src/synth/bpe/preTokenize.js";
import {trainBpe} from "../../src/synth/bpe/trainBpe.js";
import {loadCorpus} from "../../src/synth/loadCorpus.js";

/** Straightforward BPE: recount every pair before each merge; same tie-break as the trainer. */
function naiveBpe(texts: string[], vocabSize: number, minFrequency = 2) {
    const tokens = byteToUnicode.slice();
    const ids = new Map(tokens.map((token, id) => [token, id]));
    const merges: string[] = [];
    const entries = [...countPreTokens(texts)].map(([word, count]) => ({symbols: Array.from(Buffer.from(word, "utf8")), count}));

    while (tokens.length < vocabSize) {
        const counts = new Map<string, number>();
        for (const {symbols, count} of entries)
            for (let i = 0; i < symbols.length - 1; i++) {
                const key = `${symbols[i]},${symbols[i + 1]}`;
                counts.set(key, (counts.get(key) ?? 0) + count);
            }

        let best: [number, number] | undefined;
        let bestCount = 0;
        for (const [key, count] of counts) {
            const [left, right] = key.split(",").map(Number);
            if (count > bestCount || (count === bestCount && (left < best![0] || (left === best![0] && right < best![1])))) {
                best = [left, right];
                bestCount = count;
            }
        }
        if (best == null || bestCount < minFrequency)
            break;

        const [left, right] = best;
        merges.push(`${tokens[left]} ${tokens[right]}`);
        const text = tokens[left] + tokens[right];
        let id = ids.get(text);
        if (id == null) {
            id = tokens.length;
            tokens.push(text);
            ids.set(text, id);
        }
        for (const entry of entries) {
            const next: number[] = [];
            for (let i = 0; i < entry.symbols.length; i++) {
                if (entry.symbols[i] === left && entry.symbols[i + 1] === right && i < entry.symbols.length - 1) {
                    next.push(id);
                    i++;
                } else
                    next.push(entry.symbols[i]);
            }
            entry.symbols = next;
        }
    }

    return {tokens, merges};
}

test("byte-to-unicode table is GPT-2's", () => {
    assert.equal(new Set(byteToUnicode).size, 256);
    assert.equal(byteToUnicode[0x20], "Ġ");
    assert.equal(byteToUnicode[0x0a], "Ċ");
    assert.equal(byteToUnicode[0x41], "A");
    assert.equal(textToByteSymbols(" é"), "ĠÃ©");
});

test("pre-tokenizer splits like Qwen2's regex", () => {
    const counts = countPreTokens(["I'm here:  foo123 (x) ->\n\n  done"]);
    // "  done" splits as " " + " done" (a lone space leaves the next word its leading space)
    assert.deepEqual([...counts.keys()], ["I", "'m", " here", ":", " ", " foo", "1", "2", "3", " (", "x", ")", " ->\n\n", " done"]);
    assert.equal(counts.get(" "), 2);
});

test("incremental training matches a naive reference implementation", async () => {
    const corpus = (await loadCorpus()).map((text) => text.slice(0, 4000));
    const expected = naiveBpe(corpus, 700);
    const actual = trainBpe(corpus, {vocabSize: 700});
    assert.deepEqual(actual.merges, expected.merges);
    assert.deepEqual(actual.tokens, expected.tokens);
});

test("training is deterministic and self-consistent", async () => {
    const corpus = await loadCorpus();
    const first = trainBpe(corpus, {vocabSize: 3072});
    const second = trainBpe(corpus, {vocabSize: 3072});
    assert.deepEqual(second, first);

    assert.equal(first.tokens.length, 3072);
    assert.deepEqual(first.tokens.slice(0, 256), byteToUnicode);
    assert.equal(new Set(first.tokens).size, first.tokens.length);

    const known = new Set<string>();
    first.tokens.slice(0, 256).forEach((token) => known.add(token));
    for (const merge of first.merges) {
        const parts = merge.split(" ");
        assert.equal(parts.length, 2, merge);
        assert.ok(known.has(parts[0]) && known.has(parts[1]), `merge "${merge}" uses unknown tokens`);
        known.add(parts[0] + parts[1]);
    }
    assert.equal(known.size, first.tokens.length);
});

test("stops at minFrequency and validates the vocabulary size", () => {
    const result = trainBpe(["abab abab"], {vocabSize: 1000});
    assert.ok(result.tokens.length < 270);
    assert.throws(() => trainBpe([], {vocabSize: 100}), RangeError);
});

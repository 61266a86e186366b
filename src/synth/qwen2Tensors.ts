import {GgmlType, type GgmlTypeId} from "./gguf/ggufTypes.js";
import type {GgufTensorDefinition} from "./gguf/GgufWriter.js";
import type {SynthPreset} from "./presets.js";
import {constantTensorData, randomTensorData} from "./randomTensorData.js";
import type {SynthVocabulary} from "./buildVocabulary.js";

/** Std of embedding rows, as in common transformer inits. */
const EMBEDDING_STD = 0.02;

/**
 * Gain of block 0's attention output projection, relative to 1/sqrt(fan_in).
 * Block 0's residual stream is just the (small) token embedding; a unit-RMS attention output would drown it,
 * making every later layer see mostly a context average and the model loop on one token. Matching the
 * embedding's scale keeps the current token's identity alive, so greedy output varies (tuned empirically).
 */
const FIRST_ATTENTION_OUTPUT_GAIN = EMBEDDING_STD;

/** Gain of the FFN down projections, relative to 1/sqrt(fan_in): a stronger nonlinear path also avoids repetition loops. */
const FFN_DOWN_GAIN = 2;

/**
 * Std of the logits over ordinary tokens for a unit-RMS final hidden state.
 * About 2 leaves a few dozen plausible tokens per step when sampling (gibberish, but varied),
 * while tokens whose output row is near zero (special tokens) become ~e^2 times less likely than average.
 */
const LOGIT_STD = 2;

/** Output rows of special tokens are scaled down so a random model rarely ends generation early. */
const SPECIAL_TOKEN_ROW_SCALE = 0.1;

/** Small random biases, like the q/k/v biases real Qwen2 models have. */
const BIAS_STD = 0.02;

/**
 * Models that end their answers (`endsTurns`) carry a constant in hidden dimension 0: every token embedding holds
 * TURN_END_CARRIER there and no layer writes to it (row 0 of each attention output and FFN down projection is zero).
 * The LM head reads dimension 0 only in `<|im_end|>`'s row, with weight TURN_END_GAIN, so the end token's logit is
 * TURN_END_GAIN * TURN_END_CARRIER / rms(final hidden state) at every position: high enough that a sampled answer
 * stops after a few dozen tokens, varying with the hidden state's RMS, so greedy answers also end (tuned empirically).
 */
const TURN_END_CARRIER = EMBEDDING_STD;
const TURN_END_GAIN = 420;

const weightTypeIds: Record<SynthPreset["weightType"], GgmlTypeId> = {
    f32: GgmlType.F32,
    f16: GgmlType.F16,
    q8_0: GgmlType.Q8_0
};

/** The tensors llama.cpp's qwen2 architecture loads, with seeded random weights scaled to keep activations sane. */
export function qwen2Tensors(preset: SynthPreset, vocabulary: SynthVocabulary, seed: number): GgufTensorDefinition[] {
    const nEmbd = preset.embeddingLength;
    const nVocab = vocabulary.tokens.length;
    const nEmbdKv = (nEmbd / preset.headCount) * preset.headCountKv;
    const nFf = preset.feedForwardLength;
    const matrixType = weightTypeIds[preset.weightType];

    const matrix = (name: string, ne0: number, ne1: number, std = 1 / Math.sqrt(ne0)): GgufTensorDefinition => ({
        name,
        shape: [ne0, ne1],
        type: matrixType,
        // 1/sqrt(fan_in) keeps each projection's output at roughly unit RMS
        data: randomTensorData({name, seed, type: matrixType, shape: [ne0, ne1], std})
    });
    const vector = (name: string, length: number, std: number): GgufTensorDefinition => ({
        name,
        shape: [length],
        type: GgmlType.F32,
        data: randomTensorData({name, seed, type: GgmlType.F32, shape: [length], std})
    });
    const norm = (name: string, length: number, value = 1): GgufTensorDefinition => ({
        name,
        shape: [length],
        type: GgmlType.F32,
        data: constantTensorData(length, value)
    });

    // rows of the LM head: unused padding rows are zero (as good as never sampled), special rows damped
    const lmHeadRowScale = (row: number) => (
        row >= vocabulary.paddingStartId
            ? 0
            : row >= vocabulary.trainedVocabSize
                ? SPECIAL_TOKEN_ROW_SCALE
                : 1
    );
    const lmHead = (name: string, std: number): GgufTensorDefinition => ({
        name,
        shape: [nEmbd, nVocab],
        type: matrixType,
        data: randomTensorData({name, seed, type: matrixType, shape: [nEmbd, nVocab], std, rowScale: lmHeadRowScale})
    });

    const endsTurns = preset.endsTurns === true;
    if (endsTurns && (preset.tiedEmbeddings || matrixType !== GgmlType.F32))
        throw new Error("a preset that ends its turns needs an untied LM head with f32 weights");
    // with endsTurns, the rows (output dimensions) that would write to the carrier dimension are zero
    const carrierRowScale = endsTurns ? (row: number) => (row === 0 ? 0 : 1) : undefined;
    const projection = (name: string, ne0: number, ne1: number, std: number): GgufTensorDefinition => ({
        name,
        shape: [ne0, ne1],
        type: matrixType,
        data: randomTensorData({name, seed, type: matrixType, shape: [ne0, ne1], std, rowScale: carrierRowScale})
    });

    const tensors: GgufTensorDefinition[] = [];
    if (preset.tiedEmbeddings)
        tensors.push(lmHead("token_embd.weight", EMBEDDING_STD));
    else if (endsTurns) {
        const embedding = matrix("token_embd.weight", nEmbd, nVocab, EMBEDDING_STD);
        tensors.push({...embedding, data: withFirstColumn(embedding.data, nEmbd, () => TURN_END_CARRIER)});
    } else
        tensors.push(matrix("token_embd.weight", nEmbd, nVocab, EMBEDDING_STD));

    for (let i = 0; i < preset.blockCount; i++) {
        const block = `blk.${i}`;
        tensors.push(
            norm(`${block}.attn_norm.weight`, nEmbd),
            matrix(`${block}.attn_q.weight`, nEmbd, nEmbd),
            vector(`${block}.attn_q.bias`, nEmbd, BIAS_STD),
            matrix(`${block}.attn_k.weight`, nEmbd, nEmbdKv),
            vector(`${block}.attn_k.bias`, nEmbdKv, BIAS_STD),
            matrix(`${block}.attn_v.weight`, nEmbd, nEmbdKv),
            vector(`${block}.attn_v.bias`, nEmbdKv, BIAS_STD),
            projection(`${block}.attn_output.weight`, nEmbd, nEmbd, (i === 0 ? FIRST_ATTENTION_OUTPUT_GAIN : 1) / Math.sqrt(nEmbd)),
            norm(`${block}.ffn_norm.weight`, nEmbd),
            matrix(`${block}.ffn_gate.weight`, nEmbd, nFf),
            matrix(`${block}.ffn_up.weight`, nEmbd, nFf),
            projection(`${block}.ffn_down.weight`, nFf, nEmbd, FFN_DOWN_GAIN / Math.sqrt(nFf))
        );
    }

    if (preset.tiedEmbeddings) {
        // logit = gain * sum(hidden_i * embd_i) with unit-RMS hidden: std = gain * sqrt(nEmbd) * EMBEDDING_STD
        tensors.push(norm("output_norm.weight", nEmbd, LOGIT_STD / (Math.sqrt(nEmbd) * EMBEDDING_STD)));
    } else {
        const head = lmHead("output.weight", LOGIT_STD / Math.sqrt(nEmbd));
        tensors.push(
            norm("output_norm.weight", nEmbd),
            endsTurns
                ? {...head, data: withFirstColumn(head.data, nEmbd, (row) => (row === vocabulary.imEndId ? TURN_END_GAIN : 0))}
                : head
        );
    }

    return tensors;
}

/** F32 rows of `ne0` elements from `source`, with each row's first element replaced by `value(row)`. */
function withFirstColumn(source: GgufTensorDefinition["data"], ne0: number, value: (row: number) => number): GgufTensorDefinition["data"] {
    return function* () {
        let row = 0;
        for (const chunk of source()) {
            if (chunk.byteOffset % 4 !== 0 || chunk.byteLength % (ne0 * 4) !== 0)
                throw new Error("f32 tensor chunks must hold whole rows");
            const values = new Float32Array(chunk.buffer, chunk.byteOffset, chunk.byteLength / 4);
            for (let i = 0; i < values.length; i += ne0)
                values[i] = value(row++);
            yield chunk;
        }
    };
}

import {float32ToFloat16Bits} from "./gguf/float16.js";
import {GgmlType, Q8_0_BLOCK_BYTES, Q8_0_BLOCK_SIZE, type GgmlTypeId} from "./gguf/ggufTypes.js";
import type {TensorDataSource} from "./gguf/GgufWriter.js";
import {hashString, Xoshiro128} from "./random/Xoshiro128.js";

/** Target size of the chunks handed to the writer: large enough to amortize calls, small enough to stay cache- and RAM-friendly. */
const CHUNK_BYTES = 1 << 20;

/** Options of {@link randomTensorData}. */
export type RandomTensorOptions = {
    /** Tensor name; with `seed` it selects an independent random stream, so tensor order never changes values. */
    name: string,
    seed: number,
    type: GgmlTypeId,
    shape: readonly number[],

    /** Standard deviation of the (uniform) weight distribution. */
    std: number,

    /** Per-row multiplier of `std` (rows are runs of ne[0] elements); 0 gives an all-zero row. */
    rowScale?: (row: number) => number
};

/**
 * Seeded uniform random weights with the given standard deviation, produced row by row in chunks.
 * Q8_0 data is generated directly in quantized form (one shared scale per row, random int8 quants),
 * which is what makes a ~500 MB model take seconds rather than minutes.
 * Yielded chunks reuse one buffer, so consumers must copy or write each chunk before resuming the iterator.
 */
export function randomTensorData({name, seed, type, shape, std, rowScale}: RandomTensorOptions): TensorDataSource {
    const ne0 = shape[0];
    const rowCount = shape.slice(1).reduce((product, dim) => product * dim, 1);
    const amplitude = std * Math.sqrt(3); // uniform on [-a, a] has std a / sqrt(3)

    return function* () {
        const rng = new Xoshiro128(seed, hashString(name));

        if (type === GgmlType.Q8_0)
            yield* q8_0Rows(rng, ne0, rowCount, amplitude, rowScale);
        else if (type === GgmlType.F16)
            yield* f16Rows(rng, ne0, rowCount, amplitude, rowScale);
        else
            yield* f32Rows(rng, ne0, rowCount, amplitude, rowScale);
    };
}

/** F32 data with every element set to `value` (RMS-norm weights). */
export function constantTensorData(elementCount: number, value: number): TensorDataSource {
    return function* () {
        yield new Uint8Array(new Float32Array(elementCount).fill(value).buffer);
    };
}

function* f32Rows(rng: Xoshiro128, ne0: number, rowCount: number, amplitude: number, rowScale?: (row: number) => number) {
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / (ne0 * 4)));
    const values = new Float32Array(Math.min(rowsPerChunk, rowCount) * ne0);

    for (let firstRow = 0; firstRow < rowCount; firstRow += rowsPerChunk) {
        const rows = Math.min(rowsPerChunk, rowCount - firstRow);
        for (let r = 0; r < rows; r++) {
            const scale = amplitude * (rowScale?.(firstRow + r) ?? 1);
            for (let i = r * ne0, end = i + ne0; i < end; i++)
                values[i] = rng.nextSigned() * scale;
        }
        yield new Uint8Array(values.buffer, 0, rows * ne0 * 4);
    }
}

function* f16Rows(rng: Xoshiro128, ne0: number, rowCount: number, amplitude: number, rowScale?: (row: number) => number) {
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / (ne0 * 2)));
    const values = new Uint16Array(Math.min(rowsPerChunk, rowCount) * ne0);

    for (let firstRow = 0; firstRow < rowCount; firstRow += rowsPerChunk) {
        const rows = Math.min(rowsPerChunk, rowCount - firstRow);
        for (let r = 0; r < rows; r++) {
            const scale = amplitude * (rowScale?.(firstRow + r) ?? 1);
            for (let i = r * ne0, end = i + ne0; i < end; i++)
                values[i] = float32ToFloat16Bits(rng.nextSigned() * scale);
        }
        // Uint16Array is host-endian; GGUF is little-endian, as is every platform node-llama-cpp ships for
        yield new Uint8Array(values.buffer, 0, rows * ne0 * 2);
    }
}

function* q8_0Rows(rng: Xoshiro128, ne0: number, rowCount: number, amplitude: number, rowScale?: (row: number) => number) {
    const blocksPerRow = ne0 / Q8_0_BLOCK_SIZE;
    const rowBytes = blocksPerRow * Q8_0_BLOCK_BYTES;
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    const bytes = new Uint8Array(Math.min(rowsPerChunk, rowCount) * rowBytes);

    for (let firstRow = 0; firstRow < rowCount; firstRow += rowsPerChunk) {
        const rows = Math.min(rowsPerChunk, rowCount - firstRow);
        for (let r = 0; r < rows; r++) {
            const rowStart = r * rowBytes;
            // quants are uniform over int8 [-128, 127], so a scale of a / 128 spans [-a, a)
            const scale = amplitude * (rowScale?.(firstRow + r) ?? 1) / 128;
            if (scale === 0) {
                bytes.fill(0, rowStart, rowStart + rowBytes);
                continue;
            }

            const scaleBits = float32ToFloat16Bits(scale);
            for (let offset = rowStart, end = rowStart + rowBytes; offset < end; offset += Q8_0_BLOCK_BYTES) {
                bytes[offset] = scaleBits & 0xff;
                bytes[offset + 1] = scaleBits >>> 8;
                for (let q = offset + 2, blockEnd = offset + Q8_0_BLOCK_BYTES; q < blockEnd; q += 4) {
                    const random = rng.nextInt32();
                    bytes[q] = random;
                    bytes[q + 1] = random >> 8;
                    bytes[q + 2] = random >> 16;
                    bytes[q + 3] = random >> 24;
                }
            }
        }
        yield bytes.subarray(0, rows * rowBytes);
    }
}

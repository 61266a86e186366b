/** GGUF metadata value type ids, as in ggml's `enum gguf_type`. */
export const GgufValueType = {
    uint8: 0,
    int8: 1,
    uint16: 2,
    int16: 3,
    uint32: 4,
    int32: 5,
    float32: 6,
    bool: 7,
    string: 8,
    array: 9,
    uint64: 10,
    int64: 11,
    float64: 12
} as const;

/** The tensor storage types the synthesizer writes (values are ggml's `enum ggml_type` ids). */
export const GgmlType = {
    F32: 0,
    F16: 1,
    Q8_0: 8
} as const;

/** One of the tensor types in {@link GgmlType}. */
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

/** Elements per Q8_0 block: one f16 scale followed by this many int8 quants. */
export const Q8_0_BLOCK_SIZE = 32;

/** Bytes per Q8_0 block (2-byte f16 scale + 32 int8 quants). */
export const Q8_0_BLOCK_BYTES = 34;

/** Number of bytes a tensor of `type` with `elementCount` elements takes (`ne0` must fit the block size). */
export function ggmlTensorByteSize(type: GgmlTypeId, ne0: number, elementCount: number): number {
    switch (type) {
        case GgmlType.F32:
            return elementCount * 4;
        case GgmlType.F16:
            return elementCount * 2;
        case GgmlType.Q8_0:
            // llama.cpp quantizes rows independently, so each row must be whole blocks
            if (ne0 % Q8_0_BLOCK_SIZE !== 0)
                throw new Error(`Q8_0 tensors need ne[0] to be a multiple of ${Q8_0_BLOCK_SIZE}, got ${ne0}`);
            return (elementCount / Q8_0_BLOCK_SIZE) * Q8_0_BLOCK_BYTES;
    }
}

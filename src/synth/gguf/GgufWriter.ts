import {ByteBuilder} from "./ByteBuilder.js";
import {FileSink} from "./FileSink.js";
import {GgufValueType, ggmlTensorByteSize, type GgmlTypeId} from "./ggufTypes.js";

/** Produces a tensor's raw bytes in order, in chunks of any size; called once, at write time. */
export type TensorDataSource = () => Iterable<Uint8Array>;

/** A tensor to be written; `shape` lists ne[0] (the contiguous dimension) first, as GGUF does. */
export type GgufTensorDefinition = {
    name: string,
    shape: readonly number[],
    type: GgmlTypeId,
    data: TensorDataSource
};

type PendingTensor = GgufTensorDefinition & {byteSize: number};

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
const GGUF_VERSION = 3;
const GGML_MAX_NAME = 64; // ggml keeps tensor names in a char[64], terminator included
const ALIGNMENT_KEY = "general.alignment";

/**
 * Streaming GGUF v3 writer (little-endian).
 * Metadata is encoded as it is added; tensor data is pulled from each tensor's source only while writing,
 * so files far larger than memory can be produced. Entries keep insertion order, making output deterministic.
 */
export class GgufWriter {
    public readonly alignment: number;
    private readonly metadata = new ByteBuilder();
    private readonly keys = new Set<string>();
    private readonly tensors: PendingTensor[] = [];
    private readonly tensorNames = new Set<string>();

    public constructor({alignment = 32}: {alignment?: number} = {}) {
        if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0)
            throw new Error(`GGUF alignment must be a positive multiple of 8, got ${alignment}`);

        this.alignment = alignment;
    }

    public addUint16(key: string, value: number): this {
        this.beginKey(key, GgufValueType.uint16).uint16(value);
        return this;
    }

    public addUint32(key: string, value: number): this {
        if (key === ALIGNMENT_KEY && value !== this.alignment)
            throw new Error(`${ALIGNMENT_KEY} must match the writer's alignment (${this.alignment})`);

        this.beginKey(key, GgufValueType.uint32).uint32(value);
        return this;
    }

    public addInt32(key: string, value: number): this {
        this.beginKey(key, GgufValueType.int32).int32(value);
        return this;
    }

    public addFloat32(key: string, value: number): this {
        this.beginKey(key, GgufValueType.float32).float32(value);
        return this;
    }

    public addBool(key: string, value: boolean): this {
        this.beginKey(key, GgufValueType.bool).uint8(value ? 1 : 0);
        return this;
    }

    public addString(key: string, value: string): this {
        this.beginKey(key, GgufValueType.string).string(value);
        return this;
    }

    public addStringArray(key: string, values: readonly string[]): this {
        const out = this.beginArray(key, GgufValueType.string, values.length);
        for (const value of values)
            out.string(value);

        return this;
    }

    public addInt32Array(key: string, values: ArrayLike<number>): this {
        const out = this.beginArray(key, GgufValueType.int32, values.length);
        for (let i = 0; i < values.length; i++)
            out.int32(values[i]);

        return this;
    }

    public addFloat32Array(key: string, values: ArrayLike<number>): this {
        const out = this.beginArray(key, GgufValueType.float32, values.length);
        for (let i = 0; i < values.length; i++)
            out.float32(values[i]);

        return this;
    }

    /** Registers a tensor; its data source is only invoked by {@link writeFile}. */
    public addTensor(tensor: GgufTensorDefinition): this {
        const {name, shape, type} = tensor;
        if (this.tensorNames.has(name))
            throw new Error(`Duplicate tensor name: ${name}`);
        else if (Buffer.byteLength(name, "utf8") >= GGML_MAX_NAME)
            throw new Error(`Tensor name too long for ggml: ${name}`);
        else if (shape.length < 1 || shape.length > 4 || shape.some((dim) => !Number.isSafeInteger(dim) || dim <= 0))
            throw new Error(`Invalid shape for tensor ${name}: [${shape.join(", ")}]`);

        const elementCount = shape.reduce((product, dim) => product * dim, 1);
        this.tensorNames.add(name);
        this.tensors.push({...tensor, byteSize: ggmlTensorByteSize(type, shape[0], elementCount)});
        return this;
    }

    /** Writes the whole file to `filePath` (overwriting it) and returns its size in bytes. */
    public async writeFile(filePath: string): Promise<number> {
        if (!this.keys.has(ALIGNMENT_KEY))
            this.addUint32(ALIGNMENT_KEY, this.alignment);

        const sink = await FileSink.open(filePath);
        try {
            await sink.write(this.buildHeader());

            for (const tensor of this.tensors) {
                let produced = 0;
                for (const chunk of tensor.data()) {
                    produced += chunk.length;
                    if (produced > tensor.byteSize)
                        break;

                    await sink.write(chunk);
                }

                if (produced !== tensor.byteSize)
                    throw new Error(`Tensor ${tensor.name} produced ${produced} bytes, expected ${tensor.byteSize}`);

                await sink.writeZeros(this.paddingFor(tensor.byteSize));
            }
        } finally {
            await sink.close();
        }

        return sink.bytesWritten;
    }

    /** Header, metadata and tensor infos, padded so the data section starts aligned. */
    private buildHeader(): Uint8Array {
        const header = new ByteBuilder(this.metadata.byteLength + 1024 + this.tensors.length * 96);
        header
            .uint32(GGUF_MAGIC)
            .uint32(GGUF_VERSION)
            .uint64(this.tensors.length)
            .uint64(this.keys.size)
            .bytes(this.metadata.toBytes());

        let offset = 0;
        for (const tensor of this.tensors) {
            header.string(tensor.name).uint32(tensor.shape.length);
            for (const dim of tensor.shape)
                header.uint64(dim);

            header.uint32(tensor.type).uint64(offset);
            offset += tensor.byteSize + this.paddingFor(tensor.byteSize);
        }

        return header.padTo(this.alignment).toBytes();
    }

    private paddingFor(byteSize: number) {
        return (this.alignment - (byteSize % this.alignment)) % this.alignment;
    }

    private beginKey(key: string, type: number): ByteBuilder {
        if (this.keys.has(key))
            throw new Error(`Duplicate GGUF metadata key: ${key}`);
        else if (key === ALIGNMENT_KEY && type !== GgufValueType.uint32)
            throw new Error(`${ALIGNMENT_KEY} must be a uint32`);

        this.keys.add(key);
        return this.metadata.string(key).uint32(type);
    }

    private beginArray(key: string, itemType: number, length: number): ByteBuilder {
        return this.beginKey(key, GgufValueType.array).uint32(itemType).uint64(length);
    }
}

/** A growable little-endian byte buffer for GGUF headers (metadata + tensor infos). */
export class ByteBuilder {
    private buffer: Uint8Array;
    private view: DataView;
    private length = 0;

    public constructor(initialCapacity: number = 64 * 1024) {
        this.buffer = new Uint8Array(initialCapacity);
        this.view = new DataView(this.buffer.buffer);
    }

    /** Number of bytes written so far. */
    public get byteLength(): number {
        return this.length;
    }

    public uint8(value: number): this {
        this.reserve(1);
        this.view.setUint8(this.length, value);
        this.length += 1;
        return this;
    }

    public uint16(value: number): this {
        this.reserve(2);
        this.view.setUint16(this.length, value, true);
        this.length += 2;
        return this;
    }

    public uint32(value: number): this {
        this.reserve(4);
        this.view.setUint32(this.length, value, true);
        this.length += 4;
        return this;
    }

    public int32(value: number): this {
        this.reserve(4);
        this.view.setInt32(this.length, value, true);
        this.length += 4;
        return this;
    }

    public float32(value: number): this {
        this.reserve(4);
        this.view.setFloat32(this.length, value, true);
        this.length += 4;
        return this;
    }

    /** Writes a non-negative safe integer as uint64 (GGUF counts, lengths and offsets). */
    public uint64(value: number): this {
        if (!Number.isSafeInteger(value) || value < 0)
            throw new RangeError(`Not a valid uint64 value: ${value}`);

        this.reserve(8);
        this.view.setBigUint64(this.length, BigInt(value), true);
        this.length += 8;
        return this;
    }

    public bytes(bytes: Uint8Array): this {
        this.reserve(bytes.length);
        this.buffer.set(bytes, this.length);
        this.length += bytes.length;
        return this;
    }

    /** Writes a GGUF string: uint64 byte length followed by UTF-8 bytes (no terminator). */
    public string(value: string): this {
        const encoded = Buffer.from(value, "utf8");
        return this.uint64(encoded.length).bytes(encoded);
    }

    /** Pads with zero bytes up to a multiple of `alignment`. */
    public padTo(alignment: number): this {
        const padding = (alignment - (this.length % alignment)) % alignment;
        this.reserve(padding);
        this.buffer.fill(0, this.length, this.length + padding);
        this.length += padding;
        return this;
    }

    /** A view of the written bytes (valid until the next write). */
    public toBytes(): Uint8Array {
        return this.buffer.subarray(0, this.length);
    }

    private reserve(extra: number) {
        if (this.length + extra <= this.buffer.length)
            return;

        let capacity = this.buffer.length * 2;
        while (capacity < this.length + extra)
            capacity *= 2;

        const next = new Uint8Array(capacity);
        next.set(this.buffer.subarray(0, this.length));
        this.buffer = next;
        this.view = new DataView(next.buffer);
    }
}

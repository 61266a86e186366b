import fs from "node:fs/promises";

/** Buffers many small writes into large sequential file writes. */
export class FileSink {
    private readonly buffer: Uint8Array;
    private used = 0;
    private written = 0;

    private constructor(
        private readonly handle: fs.FileHandle,
        bufferSize: number
    ) {
        this.buffer = new Uint8Array(bufferSize);
    }

    /** Creates (or truncates) `filePath` for writing. */
    public static async open(filePath: string, bufferSize: number = 8 * 1024 * 1024): Promise<FileSink> {
        return new FileSink(await fs.open(filePath, "w"), bufferSize);
    }

    /** Total bytes accepted so far, flushed or not. */
    public get bytesWritten(): number {
        return this.written + this.used;
    }

    public async write(bytes: Uint8Array): Promise<void> {
        let offset = 0;
        while (offset < bytes.length) {
            const count = Math.min(bytes.length - offset, this.buffer.length - this.used);
            this.buffer.set(bytes.subarray(offset, offset + count), this.used);
            this.used += count;
            offset += count;

            if (this.used === this.buffer.length)
                await this.flush();
        }
    }

    /** Writes `count` zero bytes (alignment padding). */
    public async writeZeros(count: number): Promise<void> {
        if (count > 0)
            await this.write(new Uint8Array(count));
    }

    public async close(): Promise<void> {
        try {
            await this.flush();
        } finally {
            await this.handle.close();
        }
    }

    private async flush() {
        let offset = 0;
        while (offset < this.used) {
            const {bytesWritten} = await this.handle.write(this.buffer, offset, this.used - offset);
            offset += bytesWritten;
        }
        this.written += this.used;
        this.used = 0;
    }
}

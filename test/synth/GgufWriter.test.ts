import {test} from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {readGgufFileInfo} from "node-llama-cpp";
import {GgufWriter} from "../../src/synth/gguf/GgufWriter.js";
import {GgmlType} from "../../src/synth/gguf/ggufTypes.js";
import {float16BitsToFloat32, float32ToFloat16Bits} from "../../src/synth/gguf/float16.js";

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "flint-gguf-test-"));
    try {
        return await fn(dir);
    } finally {
        await fs.rm(dir, {recursive: true, force: true});
    }
}

test("GgufWriter round trip: every KV type and F32/F16/Q8_0 tensor data", () => withTempDir(async (dir) => {
    const f32 = new Float32Array([1, -2, 3.5, 0, 0.25, -0.125, 100, 7]);
    const f16 = Uint16Array.from([1, -1, 0.5, 65504, 0, -3.25, 1e-3, 2], float32ToFloat16Bits);
    const q8 = new Uint8Array(2 * 34).map((_, i) => (i * 37 + 11) & 0xff);

    const writer = new GgufWriter()
        .addString("general.architecture", "llama")
        .addString("test.text", "héllo ✓")
        .addUint32("test.u32", 4000000000)
        .addInt32("test.i32", -123)
        .addFloat32("test.f32", 0.5)
        .addBool("test.yes", true)
        .addBool("test.no", false)
        .addStringArray("test.strings", ["a", "", "ĠĠ Ġ"])
        .addInt32Array("test.ints", [1, -2, 3])
        .addFloat32Array("test.floats", [0.25, -1.5])
        .addTensor({name: "t.f32", shape: [4, 2], type: GgmlType.F32, data: () => [new Uint8Array(f32.buffer, 0, 12), new Uint8Array(f32.buffer, 12)]})
        .addTensor({name: "t.f16", shape: [8], type: GgmlType.F16, data: () => [new Uint8Array(f16.buffer)]})
        .addTensor({name: "t.q8", shape: [32, 2], type: GgmlType.Q8_0, data: () => [q8]});

    const filePath = path.join(dir, "round-trip.gguf");
    const bytes = await writer.writeFile(filePath);
    const file = await fs.readFile(filePath);
    assert.equal(bytes, file.length);
    assert.equal(file.length % 32, 0);

    const info = await readGgufFileInfo(filePath);
    const metadata = info.metadata as unknown as Record<string, Record<string, unknown>>;
    assert.equal(info.version, 3);
    assert.equal(metadata.general.alignment, 32); // added automatically
    assert.deepEqual(metadata.test, {
        text: "héllo ✓",
        u32: 4000000000,
        i32: -123,
        f32: 0.5,
        yes: true,
        no: false,
        strings: ["a", "", "ĠĠ Ġ"],
        ints: [1, -2, 3],
        floats: [0.25, -1.5]
    });

    const tensors = info.tensorInfo!;
    assert.deepEqual(tensors.map((tensor) => [tensor.name, tensor.dimensions.map(Number), tensor.ggmlType]), [
        ["t.f32", [4, 2], GgmlType.F32],
        ["t.f16", [8], GgmlType.F16],
        ["t.q8", [32, 2], GgmlType.Q8_0]
    ]);

    const dataOf = (index: number, length: number) => {
        const offset = Number(tensors[index].fileOffset);
        assert.equal(offset % 32, 0);
        return file.subarray(offset, offset + length);
    };
    assert.deepEqual(new Float32Array(Uint8Array.from(dataOf(0, 32)).buffer), f32);
    assert.deepEqual(new Uint16Array(Uint8Array.from(dataOf(1, 16)).buffer), f16);
    assert.deepEqual(Uint8Array.from(dataOf(2, 68)), q8);
}));

test("GgufWriter rejects invalid input", () => withTempDir(async (dir) => {
    const writer = new GgufWriter().addUint32("a.b", 1);
    assert.throws(() => writer.addUint32("a.b", 2), /Duplicate GGUF metadata key/);
    assert.throws(() => writer.addUint32("general.alignment", 64), /alignment/);
    assert.throws(() => writer.addTensor({name: "q", shape: [16, 2], type: GgmlType.Q8_0, data: () => []}), /multiple of 32/);

    writer.addTensor({name: "short", shape: [4], type: GgmlType.F32, data: () => [new Uint8Array(8)]});
    assert.throws(() => writer.addTensor({name: "short", shape: [4], type: GgmlType.F32, data: () => []}), /Duplicate tensor/);
    await assert.rejects(writer.writeFile(path.join(dir, "bad.gguf")), /produced 8 bytes, expected 16/);
}));

test("float16 conversion rounds to nearest even and handles edge cases", () => {
    assert.equal(float32ToFloat16Bits(1), 0x3c00);
    assert.equal(float32ToFloat16Bits(-2), 0xc000);
    assert.equal(float32ToFloat16Bits(65504), 0x7bff);
    assert.equal(float32ToFloat16Bits(65520), 0x7c00); // rounds up to Inf
    assert.equal(float32ToFloat16Bits(Infinity), 0x7c00);
    assert.equal(float32ToFloat16Bits(-0), 0x8000);
    assert.equal(float32ToFloat16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(float32ToFloat16Bits(2 ** -26), 0x0000); // below half of it
    assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00); // tie -> even
    assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
    assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));

    for (const value of [0.1, -3.14159, 1e-5, 6e-8, 12345.678, 0.000061035])
        assert.ok(Math.abs(float16BitsToFloat32(float32ToFloat16Bits(value)) - value) <= Math.abs(value) * 2 ** -11 + 2 ** -25, `${value}`);
});

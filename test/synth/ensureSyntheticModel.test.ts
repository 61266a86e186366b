import {test} from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {ensureSyntheticModel} from "../../src/synth/ensureSyntheticModel.js";
import {isPresetName, presets} from "../../src/synth/presets.js";
import {synthesizeModel} from "../../src/synth/synthesizeModel.js";
import {SYNTH_VERSION} from "../../src/synth/synthVersion.js";

test("concurrent ensure/synthesize calls for one file all succeed and leave no temp files", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "flint-ensure-test-"));
    try {
        const modelsDir = path.join(dir, "nested", "models");
        const expected = path.join(modelsDir, `flint-tiny-s3-v${SYNTH_VERSION}.gguf`);
        const paths = await Promise.all([
            ensureSyntheticModel({preset: "tiny", dir: modelsDir, seed: 3}),
            ensureSyntheticModel({preset: "tiny", dir: modelsDir, seed: 3})
        ]);
        assert.deepEqual(paths, [expected, expected]);

        // what racing processes do: each writes its own temp file and renames it over the same target
        const results = await Promise.all([
            synthesizeModel({preset: "tiny", outPath: expected, seed: 3}),
            synthesizeModel({preset: "tiny", outPath: expected, seed: 3})
        ]);
        assert.equal((await fs.stat(expected)).size, results[0].bytes);
        assert.deepEqual(await fs.readdir(modelsDir), [path.basename(expected)]);
    } finally {
        await fs.rm(dir, {recursive: true, force: true});
    }
});

test("preset names", () => {
    assert.deepEqual(Object.keys(presets).sort(), ["qwen2.5-0.5b", "small", "tiny", "tiny-chat", "tiny-think"]);
    assert.equal(isPresetName("tiny"), true);
    assert.equal(isPresetName("tiny-think"), true);
    assert.equal(isPresetName("qwen2.5-0.5b"), true);
    assert.equal(isPresetName("toString"), false);
    assert.equal(isPresetName("huge"), false);

    const real = presets["qwen2.5-0.5b"];
    assert.deepEqual(
        [real.blockCount, real.embeddingLength, real.headCount, real.headCountKv, real.feedForwardLength, real.paddedVocabSize],
        [24, 896, 14, 2, 4864, 151936]
    );
});

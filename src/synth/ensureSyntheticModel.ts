import fs from "node:fs/promises";
import path from "node:path";
import type {PresetName} from "./presets.js";
import {DEFAULT_SYNTH_SEED, synthesizeModel} from "./synthesizeModel.js";
import {SYNTH_VERSION} from "./synthVersion.js";

export {SYNTH_VERSION};

/** Generations in flight in this process, so concurrent callers share one synthesis per file. */
const inFlight = new Map<string, Promise<string>>();

/**
 * Returns the path of `<dir>/flint-<preset>-s<seed>-v<SYNTH_VERSION>.gguf`, synthesizing it first if it is absent.
 * Safe when processes race: each writes a private temp file and atomically renames it over the same, identical result.
 */
export async function ensureSyntheticModel(options: {
    preset: PresetName,
    dir: string,
    seed?: number
}): Promise<string> {
    const {preset, dir, seed = DEFAULT_SYNTH_SEED} = options;
    const modelPath = path.join(dir, `flint-${preset}-s${seed}-v${SYNTH_VERSION}.gguf`);

    if (await isNonEmptyFile(modelPath))
        return modelPath;

    let pending = inFlight.get(modelPath);
    if (pending == null) {
        pending = (async () => {
            await fs.mkdir(dir, {recursive: true});
            await synthesizeModel({preset, outPath: modelPath, seed});
            return modelPath;
        })().finally(() => inFlight.delete(modelPath));
        inFlight.set(modelPath, pending);
    }

    return await pending;
}

async function isNonEmptyFile(filePath: string) {
    try {
        const stat = await fs.stat(filePath);
        return stat.isFile() && stat.size > 0;
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT")
            return false;

        throw err;
    }
}

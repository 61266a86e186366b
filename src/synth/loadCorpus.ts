import fs from "node:fs/promises";
import path from "node:path";
import {fileURLToPath} from "node:url";

/** Folder holding the shipped training text (only `*.txt` files are corpus; NOTICE etc. are not). */
const corpusDirectory = fileURLToPath(new URL("./corpus/", import.meta.url));

/** Reads the shipped BPE training corpus, file by file, in sorted path order. */
export async function loadCorpus(): Promise<string[]> {
    const files = await listTextFiles(corpusDirectory);
    return await Promise.all(files.map((file) => fs.readFile(file, "utf8")));
}

async function listTextFiles(directory: string): Promise<string[]> {
    const entries = await fs.readdir(directory, {withFileTypes: true});
    // plain code-unit order rather than localeCompare: identical on every machine and locale
    const names = entries.map((entry) => entry.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

    const result: string[] = [];
    for (const name of names) {
        const entry = entries.find((item) => item.name === name)!;
        const fullPath = path.join(directory, name);
        if (entry.isDirectory())
            result.push(...await listTextFiles(fullPath));
        else if (entry.isFile() && name.endsWith(".txt"))
            result.push(fullPath);
    }

    return result;
}

/** Which GGUF the bench runs: a synthetic preset (generated on first use) or a real model. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { findCatalogEntry, loadCatalog } from '../../src/modelfiles/loadCatalog.js';
import { ensureSyntheticModel } from '../../src/synth/ensureSyntheticModel.js';
import type { BenchOptions } from './options.js';

export interface BenchModel {
  readonly path: string;
  /** Preset name or file name without `.gguf`; used in titles and result file names. */
  readonly label: string;
  readonly isSynthetic: boolean;
}

/** `--model`/FLINT_MODEL as a file path or a catalog name (downloaded with `flint pull`), else the preset. */
export async function resolveBenchModel(options: BenchOptions, repoRoot: string): Promise<BenchModel> {
  const modelsDir = path.join(repoRoot, 'models');
  if (options.model === undefined) {
    const file = await ensureSyntheticModel({ preset: options.preset, dir: modelsDir });
    return { path: file, label: options.preset, isSynthetic: true };
  }
  const direct = path.resolve(options.model);
  if (existsSync(direct)) return { path: direct, label: path.basename(direct).replace(/\.gguf$/i, ''), isSynthetic: false };
  const entry = findCatalogEntry(loadCatalog(path.join(repoRoot, 'config', 'catalog.yaml')), options.model);
  if (entry) {
    const file = path.join(modelsDir, entry.files[0].name);
    if (existsSync(file)) return { path: file, label: entry.name, isSynthetic: false };
    throw new Error(`model '${options.model}' is not downloaded yet: run 'npx flint pull ${entry.name}' first`);
  }
  throw new Error(`--model: no such file '${options.model}' and no catalog entry of that name`);
}

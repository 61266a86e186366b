import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FlintError } from '../errors/FlintError.js';
import type { Logger } from '../core/Logger.js';
import { ensureSyntheticModel } from '../synth/ensureSyntheticModel.js';
import { isPresetName, type PresetName } from '../synth/presets.js';

/** One entry of `config/catalog.yaml`. */
export interface CatalogEntry {
  readonly name: string;
  readonly uri: string;
  readonly file: string;
  readonly description?: string;
  /** When set, `flint pull` verifies the download against it. */
  readonly sha256?: string;
}

/** A model file ready to serve and how it was found. */
export interface ResolvedModel {
  readonly path: string;
  /** Default id for `/v1/models` when no alias is configured. */
  readonly defaultAlias: string;
  readonly isDemo: boolean;
}

/** Reads the catalog of known models (names → `hf:` URIs and file names). */
export function loadCatalog(file: string): CatalogEntry[] {
  if (!existsSync(file)) return [];
  const parsed = parseYaml(readFileSync(file, 'utf8')) as { models?: CatalogEntry[] } | null;
  return parsed?.models ?? [];
}

/**
 * Turns the configured model (`path`, a catalog name, `hf:` URI, `synth:<preset>`, or empty)
 * into a local GGUF file. Empty means the random-weights demo model, generated once.
 */
export async function resolveModelFile(spec: string, options: { modelsDir: string; demoPreset: PresetName; catalog: CatalogEntry[]; logger: Logger }): Promise<ResolvedModel> {
  const { modelsDir, catalog } = options;
  if (spec === '' || spec.startsWith('synth:')) {
    const preset = spec === '' ? options.demoPreset : spec.slice('synth:'.length);
    if (!isPresetName(preset)) {
      throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `model.path: unknown synthetic preset '${preset}'` } });
    }
    const file = await ensureSyntheticModel({ preset, dir: modelsDir });
    return { path: file, defaultAlias: `flint-demo-${preset}`, isDemo: true };
  }
  const entry = catalog.find((e) => e.name === spec || e.uri === spec);
  if (entry) {
    const file = path.resolve(modelsDir, entry.file);
    if (!existsSync(file)) {
      throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `model '${spec}' is not downloaded yet: run 'flint pull ${entry.name}' (expected ${file})` } });
    }
    return { path: file, defaultAlias: entry.name, isDemo: false };
  }
  if (spec.startsWith('hf:')) {
    throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `model '${spec}' is not downloaded: run 'flint pull ${spec}' first` } });
  }
  const file = path.resolve(spec);
  if (!existsSync(file)) {
    throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `model.path: no such file '${spec}' and no catalog entry of that name (see 'flint models')` } });
  }
  return { path: file, defaultAlias: path.basename(file).replace(/\.gguf$/i, ''), isDemo: false };
}

import { existsSync } from 'node:fs';
import path from 'node:path';
import { FlintError } from '../errors/FlintError.js';
import type { Logger } from '../core/Logger.js';
import { ensureSyntheticModel } from '../synth/ensureSyntheticModel.js';
import { isPresetName, type PresetName } from '../synth/presets.js';
import { findCatalogEntry, type CatalogEntry } from './loadCatalog.js';
import { pullModel, type PullOptions } from './pullModel.js';
import { toModelSource } from './toModelSource.js';

/** A model file ready to serve and how it was found. */
export interface ResolvedModel {
  readonly path: string;
  /** Default id for `/v1/models` when no alias is configured. */
  readonly defaultAlias: string;
  readonly isDemo: boolean;
}

/**
 * Turns the configured model (`path`, a catalog name, `hf:` URI, `synth:<preset>`, or empty)
 * into a local GGUF file. Empty means the random-weights demo model, generated once. A catalog
 * model or `hf:` URI that is not downloaded yet is pulled only when `pull` is given.
 */
export async function resolveModelFile(
  spec: string,
  options: { modelsDir: string; demoPreset: PresetName; catalog: readonly CatalogEntry[]; logger: Logger; pull?: Omit<PullOptions, 'modelsDir' | 'catalog'> },
): Promise<ResolvedModel> {
  const { modelsDir, catalog } = options;
  if (spec === '' || spec.startsWith('synth:')) {
    const preset = spec === '' ? options.demoPreset : spec.slice('synth:'.length);
    if (!isPresetName(preset)) {
      throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `model.path: unknown synthetic preset '${preset}'` } });
    }
    const file = await ensureSyntheticModel({ preset, dir: modelsDir });
    return { path: file, defaultAlias: `flint-demo-${preset}`, isDemo: true };
  }
  const entry = findCatalogEntry(catalog, spec);
  if (entry || /^(hf:|https?:\/\/)/i.test(spec)) {
    const source = toModelSource(spec, catalog);
    const local = source.files?.map((f) => path.resolve(modelsDir, f.name));
    const alias = entry?.name ?? path.basename(local?.[0] ?? spec).replace(/(-\d{5}-of-\d{5})?\.gguf$/i, '');
    if (local && local.every((f) => existsSync(f))) return { path: local[0], defaultAlias: alias, isDemo: false };
    if (!options.pull) {
      throw new FlintError('FLINT_ERR_CONFIG', {
        details: { detail: `model '${spec}' is not downloaded yet: run 'flint pull ${entry?.name ?? spec}', or start with --pull to download it now${local ? ` (expected ${local[0]})` : ''}` },
      });
    }
    options.logger.info({ model: spec }, 'model not downloaded yet: pulling it (--pull)');
    const pulled = await pullModel(spec, { ...options.pull, modelsDir, catalog });
    const defaultAlias = entry?.name ?? path.basename(pulled.path).replace(/(-\d{5}-of-\d{5})?\.gguf$/i, '');
    return { path: pulled.path, defaultAlias, isDemo: false };
  }
  const file = path.resolve(spec);
  if (!existsSync(file)) {
    throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `model.path: no such file '${spec}' and no catalog entry of that name (see 'flint models')` } });
  }
  return { path: file, defaultAlias: path.basename(file).replace(/\.gguf$/i, ''), isDemo: false };
}

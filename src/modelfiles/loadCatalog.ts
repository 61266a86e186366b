import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { FlintError } from '../errors/FlintError.js';
import { packageRoot } from '../utils/packageRoot.js';

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

/** One file of a catalog model (every part, for a split model), as the hub stores it. */
const CatalogFile = Type.Object(
  {
    /** The file's name under `models/` (the hub's own name). */
    name: Type.String({ pattern: '^[^/\\\\]+\\.gguf$' }),
    sizeBytes: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Stated by a public source; `flint pull` refuses a download that does not match. */
    sha256: Type.Optional(Sha256),
  },
  { additionalProperties: false },
);

/** A published coding score and where its authors state it. */
const CatalogScore = Type.Object(
  {
    benchmark: Type.String({ minLength: 1 }),
    value: Type.Number(),
    source: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

/** Hardware a model fits at its catalog quantization and a working context. */
export const hardwareTiers = ['cpu', 'gpu-8gb', 'gpu-24gb', 'gpu-more'] as const;

const CatalogEntrySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$' }),
    title: Type.String({ minLength: 1 }),
    /** `hf:<owner>/<repo>/<file>[#revision]`; for a split model, its first part. */
    source: Type.String({ pattern: '^hf:[^/]+/[^/]+/.+\\.gguf(#.+)?$' }),
    files: Type.Array(CatalogFile, { minItems: 1 }),
    quantization: Type.String({ minLength: 1 }),
    parameters: Type.String({ minLength: 1 }),
    /** Download size as the hub lists it (decimal GB, all parts); exact sizes, where known, are per file. */
    sizeGB: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** Context length the model was trained for (what its GGUF states). */
    contextLength: Type.Integer({ minimum: 1 }),
    /** Chat-template family (which node-llama-cpp chat wrapper renders it). */
    chatTemplate: Type.String({ minLength: 1 }),
    /** Has fill-in-the-middle tokens (`/v1/completions` with `suffix`, `/infill`). */
    fim: Type.Boolean(),
    /** Writes a thought segment (`<think>`…`</think>`) before its answer. */
    thinking: Type.Boolean(),
    tier: Type.Union(hardwareTiers.map((t) => Type.Literal(t))),
    scores: Type.Array(CatalogScore, { default: [] }),
    license: Type.Optional(Type.String()),
    notes: Type.Optional(Type.String()),
    /** Fields whose values no public source at hand confirmed. */
    unverified: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

/** One entry of `config/catalog.yaml`. */
export type CatalogEntry = Static<typeof CatalogEntrySchema>;

/** One file of a catalog entry. */
export type CatalogFile = Static<typeof CatalogFile>;

/**
 * Reads and checks the catalog of known models; a missing file is an empty catalog. Every problem
 * is reported at once, naming the entry and field.
 */
export function loadCatalog(file: string): CatalogEntry[] {
  if (!existsSync(file)) return [];
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `catalog ${file}: ${(err as Error).message}` }, cause: err });
  }
  const models = (parsed as { models?: unknown } | null)?.models ?? [];
  if (!Array.isArray(models)) throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `catalog ${file}: 'models' must be a list` } });
  const problems: string[] = [];
  const names = new Set<string>();
  const entries = models.map((raw: unknown, index) => {
    const entry = Value.Default(CatalogEntrySchema, structuredClone(raw)) as CatalogEntry;
    const label = `models[${index}]${typeof entry?.name === 'string' ? ` (${entry.name})` : ''}`;
    for (const error of Value.Errors(CatalogEntrySchema, entry)) problems.push(`${label}${error.path.replaceAll('/', '.')}: ${error.message}`);
    if (typeof entry?.name === 'string') {
      if (names.has(entry.name)) problems.push(`${label}: duplicate name`);
      names.add(entry.name);
    }
    return entry;
  });
  if (problems.length > 0) throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `catalog ${file}:\n  - ${problems.join('\n  - ')}` } });
  return entries;
}

/** The catalog entry `spec` names (by name or by its `source` URI), if any. */
export function findCatalogEntry(catalog: readonly CatalogEntry[], spec: string): CatalogEntry | undefined {
  return catalog.find((e) => e.name === spec || e.source === spec);
}

/** The catalog file `model.catalog` names, else the packaged `config/catalog.yaml`. */
export function catalogFile(configured: string): string {
  return configured ? path.resolve(configured) : path.join(packageRoot, 'config', 'catalog.yaml');
}

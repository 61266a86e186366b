import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { FlintError } from '../errors/FlintError.js';
import { formatTable } from '../utils/formatTable.js';
import { formatBytes } from './DownloadProgress.js';
import type { CatalogEntry } from './loadCatalog.js';
import { readGgufFacts, type GgufFacts } from './readGgufFacts.js';
import { splitParts } from './toModelSource.js';

/** One model under `models/` (all parts of a split model as one). */
export interface LocalModel {
  readonly file: string;
  readonly parts: number;
  readonly sizeBytes: number;
  readonly facts?: GgufFacts;
  /** Why the header could not be read. */
  readonly problem?: string;
}

/** The GGUF models in `modelsDir` with what their headers say; later parts of split models fold into the first. */
export async function listLocalModels(modelsDir: string): Promise<LocalModel[]> {
  const names = existsSync(modelsDir) ? readdirSync(modelsDir).filter((f) => f.toLowerCase().endsWith('.gguf')).sort() : [];
  const present = new Set(names);
  const models: LocalModel[] = [];
  for (const name of names) {
    const parts = splitParts(name);
    if (parts[0] !== name && present.has(parts[0])) continue;
    let sizeBytes = 0;
    let facts: GgufFacts | undefined;
    let problem: string | undefined;
    for (const part of parts.filter((p) => present.has(p))) {
      try {
        const partFacts = await readGgufFacts(path.join(modelsDir, part));
        facts ??= partFacts;
        sizeBytes += partFacts.sizeBytes;
      } catch (err) {
        problem ??= err instanceof FlintError ? String(err.details.detail) : String(err);
      }
    }
    const missing = parts.filter((p) => !present.has(p)).length;
    if (missing > 0) problem ??= `${missing} of ${parts.length} parts missing`;
    models.push({ file: name, parts: parts.length, sizeBytes, facts, problem });
  }
  return models;
}

/** The text `flint models` prints: local files with what their GGUF headers say, then the catalog. */
export function formatModelList(modelsDir: string, local: readonly LocalModel[], catalog: readonly CatalogEntry[]): string {
  const out = [`Local models in ${modelsDir}`];
  if (local.length === 0) out.push('  (none yet: flint pull <name>)');
  else {
    out.push(
      formatTable(
        ['FILE', 'SIZE', 'ARCH', 'CONTEXT', 'QUANT', ''],
        local.map((m) => [
          m.parts > 1 ? `${m.file} (+${m.parts - 1} parts)` : m.file,
          formatBytes(m.sizeBytes),
          m.facts?.architecture ?? '?',
          m.facts?.contextLength?.toString() ?? '?',
          m.facts?.quantization ?? '?',
          m.problem ? `unusable: ${m.problem}` : '',
        ]),
      ),
    );
  }
  const localNames = new Set(local.filter((m) => !m.problem).map((m) => m.file));
  out.push('', 'Catalog (flint pull <name>, then flint serve --model <name>)');
  out.push(
    formatTable(
      ['NAME', 'PARAMS', 'QUANT', 'SIZE', 'CONTEXT', 'FIM', 'THINK', 'HARDWARE', 'SCORES', ''],
      catalog.map((e) => {
        const exact = e.files.every((f) => f.sizeBytes !== undefined) ? e.files.reduce((sum, f) => sum + (f.sizeBytes ?? 0), 0) : undefined;
        const size = exact !== undefined ? formatBytes(exact) : e.sizeGB !== undefined ? `${e.sizeGB} GB` : '?';
        return [
          e.name,
          e.parameters,
          e.quantization,
          size,
          String(e.contextLength),
          e.fim ? 'yes' : '-',
          e.thinking ? 'yes' : '-',
          tierLabels[e.tier] ?? e.tier,
          (e.scores.map((s) => `${s.benchmark} ${s.value}`).join(', ') || '-') + (e.scores.length > 0 && e.unverified?.includes('scores') ? ' *' : ''),
          localNames.has(e.files[0].name) ? '[downloaded]' : '',
        ];
      }),
    ),
  );
  out.push('', "Scores are the authors' published numbers (* not re-checked against the source); sources and checksums are in the catalog file.");
  return out.join('\n') + '\n';
}

const tierLabels: Record<string, string> = { cpu: 'CPU', 'gpu-8gb': '8 GB GPU', 'gpu-24gb': '24 GB GPU', 'gpu-more': '>24 GB GPU' };

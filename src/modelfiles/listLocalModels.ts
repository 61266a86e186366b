import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CatalogEntry } from './resolveModelFile.js';

/** The text `flint models` prints: local GGUF files, then the catalog with what is downloaded. */
export function listLocalModels(modelsDir: string, catalog: readonly CatalogEntry[]): string {
  const local = existsSync(modelsDir) ? readdirSync(modelsDir).filter((f) => f.endsWith('.gguf')).sort() : [];
  const lines = [`Local models in ${modelsDir}:`];
  if (local.length === 0) lines.push('  (none)');
  for (const f of local) lines.push(`  ${f}  ${(statSync(path.join(modelsDir, f)).size / 1e6).toFixed(1)} MB`);
  lines.push('', 'Catalog (flint pull <name>):');
  for (const e of catalog) {
    const isLocal = existsSync(path.join(modelsDir, e.file));
    lines.push(`  ${e.name.padEnd(28)} ${isLocal ? '[downloaded]' : '            '} ${e.description ?? e.uri}`);
  }
  return lines.join('\n') + '\n';
}

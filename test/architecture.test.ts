import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helpers/testModel.js';

const srcDir = path.join(repoRoot, 'src');

/** Folders of src/ and the src/ folders each may import (composition-root files may import anything). */
const allowedInternal: Record<string, readonly string[]> = {
  utils: [],
  errors: [],
  core: ['errors', 'utils'],
  ipc: ['core', 'errors', 'utils'],
  protocol: ['core', 'errors', 'utils'],
  http: ['core', 'errors', 'utils', 'protocol', 'responses'],
  ws: ['core', 'errors', 'utils', 'protocol', 'responses'],
  responses: ['core', 'errors', 'utils', 'protocol'],
  scheduler: ['core', 'errors', 'utils', 'ipc', 'pool'],
  pool: ['core', 'errors', 'utils', 'ipc'],
  worker: ['core', 'errors', 'utils', 'ipc'],
  metrics: ['core', 'errors', 'utils'],
  logging: ['core', 'errors', 'utils'],
  config: ['core', 'errors', 'utils'],
  synth: ['errors', 'utils'],
  store: ['core', 'errors', 'utils'],
  modelfiles: ['core', 'errors', 'utils', 'synth', 'config'],
  cluster: ['core', 'errors', 'utils'],
};
const compositionRoot = new Set(['app.ts', 'main.ts', 'cli.ts']);

/**
 * Modules a folder may not import although it may import their folder: protocol/ is pure data
 * mapping, so it never runs generations, waits on events or maps errors to the wire itself.
 */
const forbiddenModules: Record<string, readonly string[]> = {
  protocol: ['core/Gateway.ts', 'core/GenerationRun.ts', 'core/TimedEvents.ts', 'errors/toWireError.ts'],
};

/** Packages only certain folders may import. */
const restrictedPackages: Array<{ pattern: RegExp; onlyIn: readonly string[] }> = [
  { pattern: /^(fastify|@fastify\/)/, onlyIn: ['http', 'ws', 'logging'] },
  { pattern: /^(ws)$/, onlyIn: ['ws'] },
  // modelfiles/ uses node-llama-cpp's downloader and GGUF reader (plain JavaScript; the native addon is never loaded there).
  { pattern: /^node-llama-cpp/, onlyIn: ['worker', 'modelfiles'] },
  { pattern: /^prom-client/, onlyIn: ['metrics'] },
  { pattern: /^better-sqlite3/, onlyIn: ['store'] },
];

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
  for (const m of source.matchAll(re)) specifiers.push(m[1] ?? m[2] ?? m[3]);
  return specifiers;
}

test('imports respect the layering of STYLE.md', () => {
  const violations: string[] = [];
  const files = walk(srcDir);
  assert.ok(files.length > 20, 'found the sources');
  for (const file of files) {
    const rel = path.relative(srcDir, file);
    const isRoot = compositionRoot.has(rel);
    const folder = rel.split(path.sep)[0];
    if (!isRoot && !(folder in allowedInternal)) violations.push(`${rel}: folder '${folder}' has no layering rule`);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = path.relative(srcDir, path.resolve(path.dirname(file), spec));
        if (target.startsWith('..')) violations.push(`${rel}: imports outside src (${spec})`);
        const targetFolder = target.split(path.sep)[0];
        if (compositionRoot.has(target.replace(/\.js$/, '.ts'))) {
          if (!isRoot) violations.push(`${rel}: imports the composition root (${spec})`);
        } else if (!isRoot && targetFolder !== folder && !allowedInternal[folder]?.includes(targetFolder)) {
          violations.push(`${rel}: ${folder}/ may not import ${targetFolder}/ (${spec})`);
        }
        if (!isRoot && forbiddenModules[folder]?.includes(target.replace(/\.js$/, '.ts'))) violations.push(`${rel}: ${folder}/ may not import ${target} (${spec})`);
        if (!spec.endsWith('.js')) violations.push(`${rel}: relative import without .js suffix (${spec})`);
      } else if (!isRoot) {
        for (const rule of restrictedPackages) {
          if (rule.pattern.test(spec) && !rule.onlyIn.includes(folder)) violations.push(`${rel}: only ${rule.onlyIn.join('/')} may import '${spec}'`);
        }
      }
    }
  }
  assert.deepEqual(violations, []);
});

test('the layering check catches a bad import', () => {
  assert.deepEqual(importsOf("import { x } from '../scheduler/Scheduler.js';\nimport 'side-effect';\nconst m = await import('node-llama-cpp');"), [
    '../scheduler/Scheduler.js',
    'side-effect',
    'node-llama-cpp',
  ]);
});

test('toWireError, the one mapping to the wire shape, has at most three callers', () => {
  const callers = walk(srcDir)
    .filter((file) => !file.endsWith(path.join('errors', 'toWireError.ts')))
    .filter((file) => /\btoWireError\(/.test(readFileSync(file, 'utf8')))
    .map((file) => path.relative(srcDir, file))
    .sort();
  assert.deepEqual(callers, ['core/GenerationRun.ts', 'http/errorHandler.ts', 'ws/ResponsesConnection.ts']);
});

/** The run's results as files: JSON with every sample, a Markdown report, and scenario extras (SVG). */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import path from 'node:path';
import type { BenchModel } from './model.js';
import type { BenchOptions } from './options.js';
import { goalsTable } from './report.js';
import type { ScenarioResult } from './types.js';

/** A 1-minute load average from which other work has likely disturbed the run. */
const busyLoad = 0.75;

export interface RunFacts {
  readonly repoRoot: string;
  readonly options: BenchOptions;
  readonly model: BenchModel;
  readonly maxContext: number;
  /** What node-llama-cpp reports it runs on (`llama.gpu`). */
  readonly llamaGpu: unknown;
  readonly loadAverage: { readonly start: number; readonly end: number };
}

function packageVersion(repoRoot: string, name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Writes `<date>-<model>[-quick][-<scenarios>].{json,md}`, `latest.md` (full runs) and extra files; returns the report and the file base. */
export function writeResults(facts: RunFacts, results: readonly ScenarioResult[]): { markdown: string; base: string } {
  const { options, model } = facts;
  const date = new Date();
  const day = date.toISOString().slice(0, 10);
  const meta = {
    date: date.toISOString(),
    model: model.label,
    modelFile: path.basename(model.path),
    synthetic: model.isSynthetic,
    threads: options.threads,
    batchThreads: options.batchThreads,
    gpu: options.gpu,
    backend: options.backend,
    llamaGpu: facts.llamaGpu,
    quick: options.quick,
    maxContext: facts.maxContext,
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    loadAverage: facts.loadAverage,
    node: process.version,
    nodeLlamaCpp: packageVersion(facts.repoRoot, 'node-llama-cpp'),
  };
  const goals = results.flatMap((r) => r.goals);
  const markdown = [
    `# Flint bench: ${model.label}${options.quick ? ' (quick)' : ''}, ${day}`,
    '',
    `Model \`${meta.modelFile}\`${model.isSynthetic ? ' (synthetic, random weights)' : ''}; ${options.threads} decode thread(s), ${options.batchThreads} for prompt batches (both sides); GPU ${options.gpu} (llama.cpp: ${String(meta.llamaGpu)}); ` +
      `${meta.cpus} CPUs (${meta.cpuModel}); Node ${meta.node}; node-llama-cpp ${meta.nodeLlamaCpp}. ` +
      `Raw = node-llama-cpp called directly in the bench process; gateway = Flint (\`createApp\`, loopback)${options.backend === 'llama-server' ? ' on the **llama-server backend** (llama.cpp\'s own server as its worker)' : ''}. Ratios are gateway/raw. ` +
      `Load average (1 min): ${meta.loadAverage.start.toFixed(2)} at start, ${meta.loadAverage.end.toFixed(2)} at end.`,
    '',
    ...(meta.loadAverage.start >= busyLoad
      ? [`> **The machine was busy when this run started** (load ${meta.loadAverage.start.toFixed(2)} on ${meta.cpus} CPUs): other processes competed for the cores, so the numbers are noisier than usual.`, '']
      : []),
    '## Goals',
    '',
    goalsTable(goals),
    '',
    ...results.flatMap((r) => [
      `## ${r.title} (\`${r.name}\`)${r.status === 'ok' ? '' : ` — ${r.status}`}`,
      '',
      ...(r.note && r.status === 'partial' ? [`_${r.note}_`, ''] : []),
      r.markdown,
      '',
    ]),
  ].join('\n');

  const outDir = path.resolve(facts.repoRoot, options.outDir);
  mkdirSync(outDir, { recursive: true });
  // A run of some scenarios gets their names in its file name and leaves latest.md to full runs,
  // so a quick check of one scenario never overwrites the last complete report.
  const isFullRun = options.scenarios.length === 0;
  const base = path.join(outDir, `${day}-${model.label}${options.quick ? '-quick' : ''}${isFullRun ? '' : `-${options.scenarios.join('-')}`}`);
  const json = JSON.stringify({ meta, goals, scenarios: results }, null, 2);
  writeFileSync(`${base}.json`, json);
  writeFileSync(`${base}.md`, markdown);
  if (isFullRun) writeFileSync(path.join(outDir, 'latest.md'), markdown);
  for (const file of results.flatMap((r) => r.files ?? [])) writeFileSync(path.join(outDir, file.name), file.content);
  if (options.json) writeFileSync(path.resolve(options.json), json);
  return { markdown, base };
}

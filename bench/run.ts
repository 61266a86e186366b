/**
 * `npm run bench`: Flint measured against node-llama-cpp called directly (the physical limit),
 * in one process tree, on the same model, threads and GPU setting. Each scenario interleaves
 * raw and gateway runs and reports medians with min/max and the gateway/raw ratio. Results go
 * to bench/results/ as JSON (every sample), Markdown and SVG. See bench/README.md.
 */
import { loadavg } from 'node:os';
import path from 'node:path';
import { Deadline, now } from './lib/clock.js';
import { startFlint } from './lib/flint.js';
import { resolveBenchModel } from './lib/model.js';
import { parseOptions, usage } from './lib/options.js';
import { writeResults } from './lib/output.js';
import { RawEngine } from './lib/rawEngine.js';
import type { BenchContext, ScenarioResult } from './lib/types.js';
import { scenarios } from './scenarios/index.js';

const repoRoot = path.resolve(import.meta.dirname, '..');

const parsed = (() => {
  try {
    return parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}\n`);
    process.exit(2);
  }
})();
if (parsed === 'help') {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const options = parsed;
const selected = options.scenarios.length === 0 ? scenarios : options.scenarios.map((name) => {
  const found = scenarios.find((s) => s.name === name);
  if (!found) {
    process.stderr.write(`unknown scenario '${name}'; known: ${scenarios.map((s) => s.name).join(', ')}\n`);
    process.exit(2);
  }
  return found;
});

const log = (message: string) => process.stdout.write(`[bench] ${message}\n`);
// Other work on the machine skews both sides unevenly; the report says how busy it was.
const loadAtStart = loadavg()[0];
const model = await resolveBenchModel(options, repoRoot);
log(`model ${model.label}: ${path.relative(repoRoot, model.path) || model.path}; threads ${options.threads} (prompt batches ${options.batchThreads}); gpu ${options.gpu}${options.quick ? '; quick' : ''}; Flint's backend ${options.backend}`);
const raw = await RawEngine.load({ modelPath: model.path, gpu: options.gpu, threads: options.threads, batchThreads: options.batchThreads });
const maxContext = options.context > 0 ? options.context : Math.min(raw.trainContextSize, 32_768);

const ctx: BenchContext = {
  options,
  modelPath: model.path,
  modelLabel: model.label,
  maxContext,
  contextFor: (tokens: number) => Math.min(maxContext, 2 ** Math.ceil(Math.log2(tokens))),
  raw: () => Promise.resolve(raw),
  startFlint: (o) =>
    startFlint({ modelPath: model.path, threads: options.threads, batchThreads: options.batchThreads, gpu: options.gpu, logLevel: options.logLevel, backend: options.backend, llamaServer: path.resolve(repoRoot, options.llamaServer), ...o }),
  runs: (quick, full) => options.runs ?? (options.quick ? quick : full),
  log,
};

const results: ScenarioResult[] = [];
for (const scenario of selected) {
  log(`— ${scenario.name}: ${scenario.title}`);
  const started = now();
  let result: ScenarioResult;
  try {
    result = await scenario.run(ctx, new Deadline(options.scenarioTimeLimitS * 1000));
  } catch (err) {
    const message = (err as Error)?.stack ?? String(err);
    log(`${scenario.name} failed: ${message}`);
    result = { name: scenario.name, title: scenario.title, status: 'failed', note: (err as Error)?.message ?? String(err), markdown: `Failed: ${(err as Error)?.message ?? String(err)}`, goals: [] };
  }
  result.durationS = (now() - started) / 1000;
  results.push(result);
  log(`${scenario.name}: ${result.status}${result.note ? ` (${result.note})` : ''} in ${result.durationS.toFixed(1)} s`);
}
await raw.dispose();

const { markdown, base } = writeResults({ repoRoot, options, model, maxContext, llamaGpu: raw.llama.gpu, loadAverage: { start: loadAtStart, end: loadavg()[0] } }, results);
process.stdout.write(`\n${markdown}\n`);
log(`results: ${path.relative(repoRoot, base)}.{json,md}${options.scenarios.length === 0 ? `, ${path.relative(repoRoot, path.join(path.dirname(base), 'latest.md'))}` : ''}`);
// Keep-alive sockets and native handles can hold the loop open; everything is written, so exit.
process.exit(results.some((r) => r.status === 'failed') ? 1 : 0);

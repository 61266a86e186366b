/**
 * `npm run bench`: Flint measured against node-llama-cpp called directly (the physical limit),
 * in one process tree, on the same model, threads and GPU setting. Each scenario interleaves
 * raw and gateway runs and reports medians with min/max and the gateway/raw ratio. Results go
 * to bench/results/ as JSON (every sample), Markdown and SVG. See bench/README.md.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import path from 'node:path';
import { Deadline, now } from './lib/clock.js';
import { startFlint } from './lib/flint.js';
import { resolveBenchModel } from './lib/model.js';
import { parseOptions, usage } from './lib/options.js';
import { RawEngine } from './lib/rawEngine.js';
import { goalsTable } from './lib/report.js';
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
log(`model ${model.label}: ${path.relative(repoRoot, model.path) || model.path}; threads ${options.threads}; gpu ${options.gpu}${options.quick ? '; quick' : ''}`);
const raw = await RawEngine.load({ modelPath: model.path, gpu: options.gpu, threads: options.threads });
const maxContext = options.context > 0 ? options.context : Math.min(raw.trainContextSize, 32_768);

const ctx: BenchContext = {
  options,
  modelPath: model.path,
  modelLabel: model.label,
  maxContext,
  raw: () => Promise.resolve(raw),
  startFlint: (o) =>
    startFlint({ modelPath: model.path, threads: options.threads, gpu: options.gpu, logLevel: options.logLevel, ...o }),
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

// --- report --------------------------------------------------------------------------------
const date = new Date();
const day = date.toISOString().slice(0, 10);
const nodeLlamaCppVersion = (() => {
  try {
    return (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
const meta = {
  date: date.toISOString(),
  model: model.label,
  modelFile: path.basename(model.path),
  synthetic: model.isSynthetic,
  threads: options.threads,
  gpu: options.gpu,
  llamaGpu: raw.llama.gpu,
  quick: options.quick,
  maxContext,
  cpus: availableParallelism(),
  cpuModel: cpus()[0]?.model ?? 'unknown',
  loadAverage: { start: loadAtStart, end: loadavg()[0] },
  node: process.version,
  nodeLlamaCpp: nodeLlamaCppVersion,
};
const goals = results.flatMap((r) => r.goals);
/** A 1-minute load average from which other work is likely to have disturbed the run. */
const busyLoad = 0.75;
const markdown = [
  `# Flint bench: ${model.label}${options.quick ? ' (quick)' : ''}, ${day}`,
  '',
  `Model \`${meta.modelFile}\`${model.isSynthetic ? ' (synthetic, random weights)' : ''}; ${options.threads} thread(s); GPU ${options.gpu} (llama.cpp: ${String(meta.llamaGpu)}); ` +
    `${meta.cpus} CPUs (${meta.cpuModel}); Node ${meta.node}; node-llama-cpp ${meta.nodeLlamaCpp}. ` +
    'Raw = node-llama-cpp called directly in the bench process; gateway = Flint (`createApp`, loopback). Ratios are gateway/raw. ' +
    `Load average (1 min): ${meta.loadAverage.start.toFixed(2)} at start, ${meta.loadAverage.end.toFixed(2)} at end.`,
  '',
  ...(meta.loadAverage.start >= busyLoad
    ? [`> **The machine was busy when this run started** (load ${meta.loadAverage.start.toFixed(2)} on ${meta.cpus} CPUs): other processes competed for the cores, so the numbers are noisier than usual.`, '']
    : []),
  '## Goals',
  '',
  goalsTable(goals),
  '',
  ...results.flatMap((r) => [`## ${r.title} (\`${r.name}\`)${r.status === 'ok' ? '' : ` — ${r.status}`}`, '', r.note && r.status === 'partial' ? `_${r.note}_\n` : '', r.markdown, '']),
].join('\n');

const outDir = path.resolve(repoRoot, options.outDir);
mkdirSync(outDir, { recursive: true });
const base = path.join(outDir, `${day}-${model.label}${options.quick ? '-quick' : ''}`);
const json = JSON.stringify({ meta, goals, scenarios: results }, null, 2);
writeFileSync(`${base}.json`, json);
writeFileSync(`${base}.md`, markdown);
writeFileSync(path.join(outDir, 'latest.md'), markdown);
for (const file of results.flatMap((r) => r.files ?? [])) writeFileSync(path.join(outDir, file.name), file.content);
if (options.json) writeFileSync(path.resolve(options.json), json);
process.stdout.write(`\n${markdown}\n`);
log(`results: ${path.relative(repoRoot, base)}.{json,md}, ${path.relative(repoRoot, path.join(outDir, 'latest.md'))}`);
// Keep-alive sockets and native handles can hold the loop open; everything is written, so exit.
process.exit(results.some((r) => r.status === 'failed') ? 1 : 0);

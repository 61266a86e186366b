/**
 * Command-line options of `npm run bench`. Every option has a default that suits the 2-core
 * CI machine; `--quick` shrinks repetitions and sizes so the whole run stays under 5 minutes.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { isPresetName, type PresetName } from '../../src/synth/presets.js';

export type GpuOption = 'off' | 'auto' | 'cuda' | 'vulkan' | 'metal';

export interface BenchOptions {
  readonly preset: PresetName;
  /** A GGUF path or catalog name that replaces the synthetic preset (`--model` or FLINT_MODEL). */
  readonly model: string | undefined;
  readonly gpu: GpuOption;
  /** Compute threads for single-token decode steps, both sides. */
  readonly threads: number;
  /**
   * Compute threads for prompt batches (>= 32 tokens), both sides: Flint's `engine.batchThreads`,
   * and the same per-batch split on the raw context.
   */
  readonly batchThreads: number;
  readonly quick: boolean;
  /** Scenario names to run, in order; empty means all. */
  readonly scenarios: readonly string[];
  /** Overrides every scenario's repetition count. */
  readonly runs: number | undefined;
  /** Tokens generated per decode run. */
  readonly tokens: number;
  /** Largest context (tokens per slot) any scenario may configure; 0 = the model's training context, at most 32768. */
  readonly context: number;
  /** Idle WebSocket session counts. */
  readonly sessions: readonly number[];
  /** Extra copy of the JSON results. */
  readonly json: string | undefined;
  /** Folder for results (relative to the repository root unless absolute). */
  readonly outDir: string;
  /** Flint's log level while benchmarking. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Wall-clock cap per scenario; loops stop early (and say so) when it passes. */
  readonly scenarioTimeLimitS: number;
  /** What runs Flint's worker (`engine.backend`), and the llama-server binary for `llama-server`. */
  readonly backend: 'node-llama-cpp' | 'llama-server';
  readonly llamaServer: string;
}

const gpuValues: readonly GpuOption[] = ['off', 'auto', 'cuda', 'vulkan', 'metal'];
const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const usage = `npm run bench -- [options]
  --preset tiny|small|qwen2.5-0.5b   synthetic model (default tiny), generated into models/
  --model PATH|NAME                  a real GGUF (path or catalog name) instead of the preset; also FLINT_MODEL
  --gpu off|auto|cuda|vulkan|metal   GPU for both sides (default off)
  --threads N                        decode threads for both sides (default 1)
  --batch-threads N                  prompt-batch threads for both sides (default: all cores, as Flint's default)
  --quick                            fewer runs and sizes (under 5 minutes on tiny)
  --scenario NAME[,NAME]             decode, ttft, agent-loop, long-context, concurrency, prompt-cache, disk-cache, idle-sessions, predicted-output
  --runs N                           repetitions per measurement (overrides each scenario's default)
  --tokens N                         tokens per decode run (default 128)
  --context N                        largest context per slot a scenario may use (default: the model's, at most 32768)
  --sessions N[,N]                   idle WebSocket session counts (default 1000,10000; --quick 1000)
  --json FILE                        also write the JSON results to FILE
  --out DIR                          results folder (default bench/results)
  --log-level LEVEL                  Flint's log level (default error)
  --time-limit S                     seconds per scenario before its loops stop early (default 900; --quick 120)
  --backend node-llama-cpp|llama-server   Flint's worker (default node-llama-cpp); the raw side stays node-llama-cpp
  --llama-server PATH                the llama-server binary for --backend llama-server (default: FLINT_LLAMA_SERVER,
                                     else .cache/llama-server/bin/llama-server from 'npm run build:llama-server')`;

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a non-negative integer, got '${value}'`);
  return n;
}

/** Parses argv (without node and script); throws with a message naming the bad option. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    allowPositionals: false,
    options: {
      preset: { type: 'string', default: 'tiny' },
      model: { type: 'string' },
      gpu: { type: 'string', default: 'off' },
      threads: { type: 'string', default: '1' },
      'batch-threads': { type: 'string' },
      quick: { type: 'boolean', default: false },
      scenario: { type: 'string', multiple: true },
      runs: { type: 'string' },
      tokens: { type: 'string', default: '128' },
      context: { type: 'string', default: '0' },
      sessions: { type: 'string' },
      json: { type: 'string' },
      out: { type: 'string', default: 'bench/results' },
      'log-level': { type: 'string', default: 'error' },
      'time-limit': { type: 'string' },
      backend: { type: 'string', default: 'node-llama-cpp' },
      'llama-server': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const preset = values.preset ?? 'tiny';
  if (!isPresetName(preset)) throw new Error(`--preset: unknown preset '${preset}' (tiny, small, qwen2.5-0.5b)`);
  const gpu = values.gpu as GpuOption;
  if (!gpuValues.includes(gpu)) throw new Error(`--gpu: expected one of ${gpuValues.join(', ')}`);
  const logLevel = values['log-level'] as BenchOptions['logLevel'];
  if (!logLevels.includes(logLevel)) throw new Error(`--log-level: expected one of ${logLevels.join(', ')}`);
  const quick = values.quick ?? false;
  const backend = values.backend ?? 'node-llama-cpp';
  if (backend !== 'node-llama-cpp' && backend !== 'llama-server') throw new Error('--backend: expected node-llama-cpp or llama-server');
  const threads = positiveInt('threads', values.threads ?? '1');
  if (threads < 1) throw new Error('--threads: at least 1');
  // Flint's default for one worker: prompt batches use every core (never fewer than decode threads).
  const batchThreads = Math.max(threads, values['batch-threads'] === undefined ? availableParallelism() : positiveInt('batch-threads', values['batch-threads']));
  const sessions = (values.sessions ?? (quick ? '1000' : '1000,10000')).split(',').map((s) => positiveInt('sessions', s.trim()));
  return {
    preset,
    model: values.model ?? (env.FLINT_MODEL || undefined),
    gpu,
    threads,
    batchThreads,
    quick,
    scenarios: (values.scenario ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0),
    runs: values.runs === undefined ? undefined : Math.max(1, positiveInt('runs', values.runs)),
    tokens: Math.max(2, positiveInt('tokens', values.tokens ?? '128')),
    context: positiveInt('context', values.context ?? '0'),
    sessions,
    json: values.json,
    outDir: values.out ?? 'bench/results',
    logLevel,
    scenarioTimeLimitS: values['time-limit'] === undefined ? (quick ? 120 : 900) : Math.max(1, positiveInt('time-limit', values['time-limit'])),
    backend,
    llamaServer: values['llama-server'] ?? (env.FLINT_LLAMA_SERVER || '.cache/llama-server/bin/llama-server'),
  };
}

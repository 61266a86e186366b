/** The contract between the runner (bench/run.ts) and each scenario. */
import type { Deadline } from './clock.js';
import type { FlintServer } from './flint.js';
import type { BenchOptions } from './options.js';
import type { RawEngine } from './rawEngine.js';
import type { Goal } from './report.js';

export interface FlintOverrides {
  readonly contextSize: number;
  readonly slots: number;
  readonly savedPrefixBytes?: number;
  readonly sections?: Readonly<Record<string, Record<string, unknown>>>;
  /** Flint's data folder, kept after close (for a restart on the same data). */
  readonly dataDir?: string;
}

/** What every scenario gets from the runner. */
export interface BenchContext {
  readonly options: BenchOptions;
  readonly modelPath: string;
  /** Preset name or model file name, for titles and file names. */
  readonly modelLabel: string;
  /** Largest context per slot any scenario may configure (`--context`, else the model's, capped). */
  readonly maxContext: number;
  /** Smallest power-of-two context holding `tokens`, at most `maxContext`. */
  contextFor(tokens: number): number;
  /** The raw engine, loaded once on first use and shared by the scenarios. */
  raw(): Promise<RawEngine>;
  /** Flint on a free loopback port with this run's model, threads and GPU setting. */
  startFlint(overrides: FlintOverrides): Promise<FlintServer>;
  /** Repetitions: `--runs` if given, else the scenario's quick or full default. */
  runs(quick: number, full: number): number;
  log(message: string): void;
}

export interface ScenarioResult {
  readonly name: string;
  readonly title: string;
  readonly status: 'ok' | 'partial' | 'skipped' | 'failed';
  /** Why skipped, failed or partial (e.g. stopped at the time limit). */
  readonly note?: string;
  readonly settings?: Record<string, unknown>;
  /** Every measured sample, for re-analysis. */
  readonly samples?: unknown;
  readonly stats?: unknown;
  /** This scenario's section of the report (without its heading). */
  readonly markdown: string;
  readonly goals: Goal[];
  /** Extra files for the results folder (e.g. SVG charts). */
  readonly files?: ReadonlyArray<{ readonly name: string; readonly content: string }>;
  durationS?: number;
}

export interface Scenario {
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult>;
}

/** A result for a scenario that did not run. */
export function skipped(scenario: Pick<Scenario, 'name' | 'title'>, note: string): ScenarioResult {
  return { name: scenario.name, title: scenario.title, status: 'skipped', note, markdown: `Skipped: ${note}`, goals: [] };
}

/**
 * Shared pieces of the real-client suite (`npm run test:clients`): loading the pinned clients
 * from `.clients/`, a real `flint serve` process on the tiny model, /metrics scraping, timing
 * and a per-file report. Nothing here imports a client statically, so `tsc` and `npm test`
 * work without `.clients/` installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parsePromText, valueOf } from '../helpers/promText.js';
import { spawnServer } from '../helpers/spawnServer.js';
import { ensureSyntheticModel } from '../../src/synth/ensureSyntheticModel.js';
import type { PresetName } from '../../src/synth/presets.js';
import { repoRoot, testModelsDir } from '../helpers/testModel.js';

export const clientsDir = path.join(repoRoot, '.clients');
export const fixturesDir = path.join(repoRoot, 'test', 'clients', 'fixtures');
export const reportsDir = path.join(clientsDir, 'reports');

/**
 * Imports a package (or a subpath such as `openai/resources/responses/ws`) from `.clients/`.
 * A bare specifier resolves against the importing file, so the import runs from a small
 * module inside `.clients/` (written here when missing).
 */
export async function loadClient<T = any>(specifier: string): Promise<T> {
  if (!existsSync(path.join(clientsDir, 'node_modules'))) {
    throw new Error('.clients/ is not installed: run `node --import tsx scripts/installClients.ts` (npm run test:clients does)');
  }
  const loader = path.join(clientsDir, 'load.mjs');
  if (!existsSync(loader)) writeFileSync(loader, 'export const load = (specifier) => import(specifier);\n');
  const { load } = (await import(pathToFileURL(loader).href)) as { load: (s: string) => Promise<T> };
  return load(specifier);
}

/** The installed version of a package in `.clients/`. */
export function clientVersion(name: string): string {
  const file = path.join(clientsDir, 'node_modules', ...name.split('/'), 'package.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : '(not installed)';
}

/** How a client process ended, and what it printed. */
export interface ProcessRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a client's executable to its end (SIGKILL by PID after `timeoutMs`), collecting its output. */
export function runProcess(executable: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<ProcessRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A temporary directory removed by `cleanup()`. */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A running `flint serve` child on a synthetic model. */
export interface Flint {
  readonly url: string;
  readonly child: ChildProcess;
  readonly modelId: string;
  /** What the server printed (stdout and stderr), for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

/** Settings of the suite's server; FLINT_* variables override them. */
export interface FlintOptions {
  /** The synthetic model (default `tiny`). */
  readonly preset?: PresetName;
  readonly contextSize?: number;
  readonly slots?: number;
  /** engine.defaultMaxTokens: a cap for clients that send no output limit (Codex). */
  readonly defaultMaxTokens?: number;
  readonly env?: Record<string, string>;
  /** More top-level YAML for the config file (e.g. `upstreams:` of a front). */
  readonly config?: string;
}

/**
 * Spawns `node bin/flint.js serve --port 0` with a synthetic model (tiny unless told), one decode thread
 * and two prompt threads, a throwaway data dir, and a config file for the settings that have
 * no FLINT_* variable. Stop it with `stop()` (SIGTERM by PID, SIGKILL after 10 s).
 */
export async function startFlint(options: FlintOptions = {}): Promise<Flint> {
  const model = await ensureSyntheticModel({ preset: options.preset ?? 'tiny', dir: testModelsDir });
  const dir = tempDir('flint-clients-');
  const configFile = path.join(dir, 'flint.yaml');
  writeFileSync(configFile, `engine:\n  defaultMaxTokens: ${options.defaultMaxTokens ?? 128}\n${options.config ?? ''}`);
  const server = await spawnServer([], {
    FLINT_MODEL: model,
    FLINT_CONFIG: configFile,
    FLINT_CONTEXT_SIZE: String(options.contextSize ?? 16384),
    FLINT_SLOTS: String(options.slots ?? 2),
    FLINT_WORKERS: '1',
    FLINT_THREADS: '1',
    FLINT_BATCH_THREADS: '2',
    FLINT_DATA_DIR: path.join(dir, 'data'),
    FLINT_LOG_LEVEL: process.env.FLINT_CLIENTS_LOG_LEVEL ?? 'info',
    ...options.env,
  });
  let output = '';
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 4_000_000) output = output.slice(-2_000_000);
  };
  // spawnServer stopped reading stdout after the URL line: keep draining it so the server never blocks.
  server.child.stdout!.on('data', keep);
  server.child.stdout!.resume();
  server.child.stderr!.on('data', keep);
  const key = options.env?.FLINT_API_KEYS?.split(',')[0];
  const models = (await (await fetch(`${server.url}/v1/models`, { headers: key ? { authorization: `Bearer ${key}` } : {} })).json()) as { data: Array<{ id: string }> };
  const modelId = models.data[0].id;
  const exited = new Promise<void>((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) resolve();
    else server.child.once('exit', () => resolve());
  });
  return {
    url: server.url,
    child: server.child,
    modelId,
    logs: () => server.stderr() + output,
    stop: async () => {
      const pid = server.child.pid;
      if (pid !== undefined && server.child.exitCode === null && server.child.signalCode === null) {
        process.kill(pid, 'SIGTERM');
        const timer = setTimeout(() => {
          if (server.child.exitCode !== null || server.child.signalCode !== null) return;
          // Its workers first, so none outlives a server that would not stop.
          for (const worker of childPids(pid)) process.kill(worker, 'SIGKILL');
          process.kill(pid, 'SIGKILL');
        }, 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** PIDs whose parent is `pid` (Linux /proc; empty elsewhere). */
function childPids(pid: number): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return readFileSync(`/proc/${d}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1] === String(pid);
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

/** One /metrics scrape. */
export async function scrapeMetrics(url: string): Promise<ReturnType<typeof parsePromText>> {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return parsePromText(await res.text());
}

/** `flint_requests_total` for an api (and optional outcome/status). */
export function requestsServed(exposition: ReturnType<typeof parsePromText>, labels: Record<string, string>): number {
  return valueOf(exposition, 'flint_requests_total', labels);
}

/** Finished requests per api/status/outcome between two scrapes (non-zero entries only). */
export function requestDelta(before: ReturnType<typeof parsePromText>, after: ReturnType<typeof parsePromText>): Record<string, number> {
  const key = (l: Record<string, string>) => `${l.api}/${l.status}/${l.outcome}`;
  const out: Record<string, number> = {};
  for (const s of after.samples.filter((x) => x.name === 'flint_requests_total')) {
    const was = before.samples.find((b) => b.name === s.name && key(b.labels) === key(s.labels))?.value ?? 0;
    if (s.value - was !== 0) out[key(s.labels)] = s.value - was;
  }
  return out;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs `fn` and rejects after `ms` with a message naming `what`. */
export async function withDeadline<T>(what: string, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([fn(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Figures of one client on one transport, for the report. */
export interface TransportFigures {
  client: string;
  transport: string;
  turns: number;
  /** cached_tokens of the second request / input_tokens of the first. */
  cachedShareOfSecondPrompt?: number;
  firstPromptTokens?: number;
  ttftMs: number[];
  turnMs: number[];
  notes: string[];
}

/** Collects a test file's figures and writes them to `.clients/reports/<name>.json`. */
export class Report {
  readonly #name: string;
  readonly #entries: TransportFigures[] = [];
  readonly startedAt = Date.now();

  constructor(name: string) {
    this.#name = name;
  }

  entry(client: string, transport: string): TransportFigures {
    const e: TransportFigures = { client, transport, turns: 0, ttftMs: [], turnMs: [], notes: [] };
    this.#entries.push(e);
    return e;
  }

  /** One line per entry, for the test output. */
  lines(): string[] {
    return this.#entries.map((e) => {
      const share = e.cachedShareOfSecondPrompt === undefined ? 'n/a' : `${(e.cachedShareOfSecondPrompt * 100).toFixed(1)}%`;
      const ttft = median(e.ttftMs);
      const turn = median(e.turnMs);
      return `${e.client} ${e.transport}: turns=${e.turns} cached(2nd)=${share}${e.firstPromptTokens ? ` prompt1=${e.firstPromptTokens}tok` : ''} ttft_median=${ttft === undefined ? 'n/a' : `${ttft.toFixed(0)}ms`} turn_median=${turn === undefined ? 'n/a' : `${turn.toFixed(0)}ms`}${e.notes.length ? ` notes: ${e.notes.join('; ')}` : ''}`;
    });
  }

  /** Writes the figures, and `requests` (a summary of what the client sent) to `<name>-requests.json`. */
  write(requests?: unknown[]): void {
    mkdirSync(reportsDir, { recursive: true });
    const file = path.join(reportsDir, `${this.#name}.json`);
    writeFileSync(file, JSON.stringify({ name: this.#name, durationMs: Date.now() - this.startedAt, entries: this.#entries }, null, 2) + '\n');
    if (requests) writeFileSync(path.join(reportsDir, `${this.#name}-requests.json`), JSON.stringify(requests, null, 2) + '\n');
    for (const line of this.lines()) console.log(`# report ${line}`);
  }
}

/** A long, stable developer message so a second turn has a prefix worth caching. */
export const longInstructions = [
  'You are a terse coding assistant working in a TypeScript repository.',
  ...Array.from({ length: 40 }, (_, i) => `Rule ${i + 1}: keep functions small, name things plainly, test what you change, and never break the build (${i}).`),
].join('\n');

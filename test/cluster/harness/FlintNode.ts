import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { parsePromText, valueOf } from '../../helpers/promText.js';
import { cleanEnv, flintBin } from '../../helpers/spawnServer.js';
import { repoRoot } from '../../helpers/testModel.js';

/** What a node was started with. */
export interface FlintNodeOptions {
  /** Its `server.replicaId`, which every answer carries as `x-flint-replica`. */
  readonly name: string;
  /** A loopback address of its own (127.0.0.2, 127.0.0.3, ...). */
  readonly host: string;
  readonly model: string;
  /** Folder for its data and config (a fresh one per node). */
  readonly dir: string;
  /** More `server:` keys, as indented YAML lines appended after its replicaId. */
  readonly config?: string;
  readonly env?: Record<string, string>;
  readonly apiKeys: readonly string[];
}

/** A node's `request finished` log line, as far as the scenarios read it. */
export interface FinishedLine {
  readonly reqId?: string;
  readonly api: string;
  readonly status: number;
  readonly outcome: string;
  /** Prompt tokens of the request (absent for one refused before tokenization). */
  readonly promptTokens?: number;
}

/** The process's exit, and when it was seen. */
export interface NodeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly atMs: number;
}

/**
 * One `flint serve` process on its own loopback address, stopped only by its PID (and its
 * workers by theirs). Its JSON log is kept: the `request finished` lines are the count of a node
 * whose /metrics can no longer be read (it exited or was killed).
 */
export class FlintNode {
  readonly name: string;
  readonly host: string;
  readonly url: string;
  readonly pid: number;
  readonly exited: Promise<NodeExit>;
  readonly #child: ChildProcess;
  readonly #finished: FinishedLine[] = [];
  readonly #key: string;
  #workerPids: number[] = [];
  #stderr = '';

  private constructor(child: ChildProcess, options: FlintNodeOptions, url: string, lines: AsyncIterator<string>) {
    this.#child = child;
    this.name = options.name;
    this.host = options.host;
    this.url = url;
    this.pid = child.pid!;
    this.#key = options.apiKeys[0];
    this.exited = once(child, 'exit').then(([code, signal]) => ({ code, signal, atMs: performance.now() }) as NodeExit);
    child.stderr!.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-20_000)));
    void (async () => {
      for (let next = await lines.next(); !next.done; next = await lines.next()) this.#onLine(next.value);
    })().catch(() => undefined);
  }

  /** Starts the node and resolves once it prints its URL. */
  static async start(options: FlintNodeOptions): Promise<FlintNode> {
    mkdirSync(options.dir, { recursive: true });
    const configFile = path.join(options.dir, 'flint.yaml');
    writeFileSync(configFile, `server:\n  replicaId: ${options.name}\n${options.config ?? ''}`);
    const child = spawn(process.execPath, [flintBin, 'serve', '--host', options.host, '--port', '0', '--config', configFile, '--model', options.model], {
      cwd: repoRoot,
      env: cleanEnv({
        FLINT_WORKERS: '1',
        FLINT_LOG_LEVEL: 'info',
        FLINT_LOG_FORMAT: 'json',
        FLINT_DATA_DIR: path.join(options.dir, 'data'),
        FLINT_API_KEYS: options.apiKeys.join(','),
        ...options.env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const pattern = new RegExp(`listening on (http://${options.host.replace(/\./g, '\\.')}:\\d+)`);
    const deadline = AbortSignal.timeout(60_000);
    for (let next = await lines.next(); !next.done && !deadline.aborted; next = await lines.next()) {
      const match = pattern.exec(next.value);
      if (match) {
        const node = new FlintNode(child, options, match[1], lines);
        node.#workerPids = node.#readWorkerPids();
        return node;
      }
    }
    child.kill('SIGKILL');
    throw new Error(`${options.name} did not print its URL; stderr: ${child.stderr!.read()?.toString() ?? ''}`);
  }

  get isRunning(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** `request finished` log lines so far (one per finished generation, like flint_requests_total). */
  get finished(): ReadonlyArray<FinishedLine> {
    return this.#finished;
  }

  stderr(): string {
    return this.#stderr;
  }

  /** The worker processes it had when it started. */
  get workerPids(): readonly number[] {
    return this.#workerPids;
  }

  signal(signal: NodeJS.Signals): void {
    process.kill(this.pid, signal);
  }

  /** Sum of `flint_requests_total` on this node, read directly (not through the balancer). */
  async requestsTotal(): Promise<number> {
    const res = await fetch(`${this.url}/metrics`, { headers: { authorization: `Bearer ${this.#key}` }, signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) throw new Error(`${this.name} /metrics: ${res.status}`);
    return valueOf(parsePromText(await res.text()), 'flint_requests_total');
  }

  /** Unlabelled samples of its /metrics by name (gauges such as flint_requests_waiting), read directly. */
  async gauges(names: readonly string[]): Promise<Record<string, number>> {
    const res = await fetch(`${this.url}/metrics`, { headers: { authorization: `Bearer ${this.#key}` }, signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) throw new Error(`${this.name} /metrics: ${res.status}`);
    const exposition = parsePromText(await res.text());
    return Object.fromEntries(names.map((name) => [name, valueOf(exposition, name)]));
  }

  /** Resident memory in bytes (VmRSS of /proc/<pid>/status) of the gateway process and of each worker it started with. */
  rss(): { readonly gateway: number; readonly workers: readonly number[] } {
    return { gateway: vmRss(this.pid), workers: this.#workerPids.map(vmRss) };
  }

  /** Stops it by PID (SIGCONT first, for a node a test paused), then any worker it left. */
  async dispose(): Promise<void> {
    if (this.isRunning) {
      process.kill(this.pid, 'SIGCONT');
      process.kill(this.pid, 'SIGTERM');
      const stopped = await Promise.race([this.exited, delay(20_000, undefined, { ref: false })]);
      if (!stopped && this.isRunning) {
        process.kill(this.pid, 'SIGKILL');
        await this.exited;
      }
    }
    // Workers exit when their parent's channel closes; one that has not after 5 s is killed.
    for (const pid of this.#workerPids) {
      for (let i = 0; i < 100 && isAlive(pid); i++) await delay(50);
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #onLine(line: string): void {
    if (!line.startsWith('{')) return;
    let entry: { msg?: string; reqId?: string; api?: string; status?: number; outcome?: string; promptTokens?: number };
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.msg === 'request finished') this.#finished.push({ reqId: entry.reqId, api: entry.api!, status: entry.status!, outcome: entry.outcome!, promptTokens: entry.promptTokens });
  }

  /** The node's child processes (its workers), from /proc; empty where there is none. */
  #readWorkerPids(): number[] {
    try {
      return readFileSync(`/proc/${this.pid}/task/${this.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }
}

/** Whether a process with this PID exists (and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** VmRSS of a process in bytes, from /proc/<pid>/status. */
export function vmRss(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { RestartBackoff } from './RestartBackoff.js';
import { FlintError } from '../errors/FlintError.js';
import type { Logger } from '../core/Logger.js';
import type { WorkerClient } from './WorkerClient.js';
import { startServerWorker, type ServerWorkerModule } from './serverWorker.js';

/** How to start the llama-server workers (`engine.backend: llama-server`). */
export interface LlamaServerPoolOptions {
  readonly workers: number;
  /** The binary, and extra arguments passed after Flint's own. */
  readonly binary: string;
  readonly args: readonly string[];
  readonly modelPath: string;
  /** Tokens per slot. */
  readonly contextSize: number;
  readonly slots: number;
  readonly threads: number;
  readonly batchThreads: number;
  readonly batchSize: number;
  readonly gpu: string;
  /** Host memory for prompts evicted from slots (llama-server's `--cache-ram`), per worker. */
  readonly savedPrefixBytes: number;
  readonly startTimeoutMs: number;
  /** A server whose health probe keeps failing this long while its process lives is killed and restarted. */
  readonly hungTimeoutMs: number;
  /** How often its health is probed. */
  readonly probeIntervalMs: number;
  /** The Flint worker process that renders and tokenizes for each server (its settings get the server's address). */
  readonly worker: ServerWorkerModule;
  readonly logger: Logger;
  readonly maxRestartDelayMs?: number;
}

export interface LlamaServerPoolEvents {
  /** A worker and its server are up: its slots can be leased. */
  onWorkerUp?(worker: WorkerClient, facts: LlamaServerFacts): void;
  onWorkerDown?(index: number, reason: string): void;
  onRestart?(index: number): void;
}

/** What a started llama-server reports of itself (`/props`). */
export interface LlamaServerFacts {
  /** Tokens per slot, as the server set them up. */
  readonly contextSize: number;
  readonly slots: number;
  readonly build: string;
}

/** Last bytes of a worker's log kept to explain a failed start. */
const maxLogTailChars = 8 * 1024;

/** One worker: the llama-server that holds its KV cache and the Flint worker process that drives it. */
interface Pair {
  readonly process: ChildProcess;
  readonly exited: Promise<string>;
  readonly worker: WorkerClient;
  readonly stop: () => Promise<void>;
}

/**
 * Starts and supervises this node's workers on llama.cpp's own server: each worker is a
 * llama-server process on its own loopback port with a random key, driven by a Flint worker
 * process (WorkerClient, as with node-llama-cpp) that renders and tokenizes each prompt itself,
 * incrementally turn after turn, and sends it as token ids to the server's slot of the index
 * Flint's table chose (ServerSlot). If either process dies, or the server's health probe fails
 * for `hungTimeoutMs`, both go: their requests end (retried elsewhere before any output) and the
 * pair restarts with capped exponential backoff, like a node-llama-cpp worker.
 */
export class LlamaServerPool {
  readonly #options: LlamaServerPoolOptions;
  readonly #events: LlamaServerPoolEvents;
  readonly #workers: Array<Pair | undefined>;
  readonly #restarts: RestartBackoff;
  readonly #stopping = new AbortController();
  /** Pairs being stopped after one of their processes died (dispose waits for them too). */
  readonly #stops = new Set<Promise<void>>();
  #isDisposed = false;

  constructor(options: LlamaServerPoolOptions, events: LlamaServerPoolEvents = {}) {
    this.#options = options;
    this.#events = events;
    this.#workers = new Array(options.workers).fill(undefined);
    this.#restarts = new RestartBackoff(options.workers, { maxDelayMs: options.maxRestartDelayMs, logger: options.logger, kind: 'llama-server worker' });
  }

  /** Starts every worker; rejects if the first start of any fails (a bad binary or model). */
  async start(): Promise<void> {
    await Promise.all(this.#workers.map((_, i) => this.#startWorker(i)));
  }

  /** Workers that are up right now. */
  get liveWorkers(): WorkerClient[] {
    return this.#workers.flatMap((w) => (w && w.worker.isAlive ? [w.worker] : []));
  }

  /** Process ids of the running servers (tests stop them by PID). */
  get pids(): number[] {
    return this.#workers.flatMap((w) => (w?.process.pid !== undefined && w.process.exitCode === null ? [w.process.pid] : []));
  }

  /** The command line of worker `port` (the key goes by environment, never on the command line). */
  argv(port: number): string[] {
    const o = this.#options;
    return [
      '--model', o.modelPath,
      '--host', '127.0.0.1',
      '--port', String(port),
      // Slots of their own size, as node-llama-cpp's sequences: -c is the total over slots.
      '--ctx-size', String(o.contextSize * o.slots),
      '--parallel', String(o.slots),
      '--no-kv-unified',
      '--threads', String(o.threads),
      '--threads-batch', String(o.batchThreads),
      '--batch-size', String(o.batchSize),
      '--n-gpu-layers', o.gpu === 'off' ? '0' : '999',
      '--cache-ram', String(Math.floor(o.savedPrefixBytes / (1024 * 1024))),
      '--no-webui',
      '--metrics',
      ...o.args,
    ];
  }

  async #startWorker(index: number): Promise<void> {
    const o = this.#options;
    const port = await freeLoopbackPort();
    const key = randomBytes(18).toString('base64url');
    const child = spawn(o.binary, this.argv(port), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LLAMA_API_KEY: key },
    });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-maxLogTailChars);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`it could not be started (${err.message})`));
      child.once('exit', (code, signal) => resolve(signal ? `it was killed by ${signal}` : `it exited with code ${code}`));
    });
    const url = `http://127.0.0.1:${port}`;
    let facts: LlamaServerFacts;
    let worker: WorkerClient;
    try {
      facts = await waitUntilServing(url, key, exited, o.startTimeoutMs, this.#stopping.signal);
    } catch (err) {
      child.kill('SIGKILL');
      const lastLines = tail.trim().split('\n').slice(-8).join('\n');
      throw new FlintError('FLINT_ERR_MODEL_LOAD', {
        details: { detail: `llama-server (${o.binary}) did not start: ${(err as Error).message}${lastLines ? `; its last lines:\n${lastLines}` : ''}` },
        cause: err,
      });
    }
    try {
      worker = await startServerWorker(o.worker, { index, server: { url, key }, contextSize: facts.contextSize, slots: facts.slots, startTimeoutMs: o.startTimeoutMs, logger: o.logger });
    } catch (err) {
      await stopProcess(child, exited);
      throw err;
    }
    const stop = () => Promise.all([worker.dispose(), stopProcess(child, exited)]).then(() => undefined);
    if (this.#isDisposed) {
      await stop();
      return;
    }
    const pair: Pair = { process: child, exited, worker, stop };
    this.#workers[index] = pair;
    const upAt = Date.now();
    // Its health probe failing while the process lives is a hang; past the bound the server is killed.
    let failingSince: number | undefined;
    const probe = setInterval(() => {
      void fetch(`${url}/health`, { signal: AbortSignal.timeout(Math.max(500, o.probeIntervalMs)) })
        .then(async (res) => {
          await res.body?.cancel();
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          failingSince = undefined;
        })
        .catch(() => {
          failingSince ??= Date.now();
          if (Date.now() - failingSince < o.hungTimeoutMs || child.exitCode !== null) return;
          o.logger.warn({ workerId: index, pid: child.pid }, 'llama-server worker hangs; killing it');
          child.kill('SIGKILL');
        });
    }, o.probeIntervalMs);
    probe.unref();
    let isGone = false;
    const gone = (reason: string) => {
      if (isGone) return;
      isGone = true;
      clearInterval(probe);
      if (this.#workers[index] === pair) this.#workers[index] = undefined;
      this.#events.onWorkerDown?.(index, reason);
      const stopped = stop().then(() => this.#onWorkerExit(index, reason, upAt, tail));
      this.#stops.add(stopped);
      void stopped.finally(() => this.#stops.delete(stopped));
    };
    worker.onExit((reason) => gone(`its worker process ${reason}`));
    void exited.then((reason) => gone(`llama-server ${reason}`));
    o.logger.info({ workerId: index, pid: child.pid, workerPid: worker.pid, port, threads: o.threads, batchThreads: o.batchThreads, build: facts.build }, 'worker up (llama-server)');
    this.#events.onWorkerUp?.(worker, facts);
  }

  #onWorkerExit(index: number, reason: string, upAt: number, tail: string): void {
    if (this.#isDisposed) return;
    this.#restarts.schedule(index, upAt, reason, () => this.#startWorker(index), () => this.#events.onRestart?.(index), { lastLines: tail.trim().split('\n').slice(-4).join('\n') });
  }

  /** Stops every worker and server (SIGTERM, then SIGKILL) and cancels pending restarts. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#isDisposed) return;
    this.#isDisposed = true;
    this.#stopping.abort();
    const restarts = this.#restarts.stop();
    await Promise.all([...this.#workers.map((w) => w?.stop()), ...this.#stops]);
    await restarts;
  }
}

/** A port no one listens on now, on 127.0.0.1 (the server binds it a moment later). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

/** Polls `/health` until the model is loaded (200), then reads `/props`; rejects if the process exits first or time runs out. */
async function waitUntilServing(url: string, key: string, exited: Promise<string>, timeoutMs: number, stopping: AbortSignal): Promise<LlamaServerFacts> {
  const deadline = Date.now() + timeoutMs;
  let hasExited: string | undefined;
  void exited.then((reason) => (hasExited = reason));
  for (;;) {
    if (hasExited !== undefined) throw new Error(hasExited);
    if (stopping.aborted) throw new Error('the pool is stopping');
    if (Date.now() > deadline) throw new Error(`it did not load the model within ${timeoutMs} ms`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await delay(100);
  }
  return readServerFacts(url, key);
}

/** A llama-server's slots, their size and its build, from its `/props`. */
export async function readServerFacts(url: string, key: string): Promise<LlamaServerFacts> {
  const res = await fetch(`${url}/props`, { headers: key ? { authorization: `Bearer ${key}` } : {}, signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`/props answered ${res.status}`);
  const props = (await res.json()) as { total_slots?: unknown; default_generation_settings?: { n_ctx?: unknown }; build_info?: unknown };
  return {
    contextSize: Number(props.default_generation_settings?.n_ctx) || 0,
    slots: Number(props.total_slots) || 1,
    build: typeof props.build_info === 'string' ? props.build_info : 'unknown',
  };
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. */
async function stopProcess(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(killer);
}

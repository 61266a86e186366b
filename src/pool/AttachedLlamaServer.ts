import type { Logger } from '../core/Logger.js';
import type { WorkerSettings } from '../ipc/messages.js';
import { readServerFacts, type LlamaServerFacts } from './LlamaServerPool.js';
import type { UpstreamSettings } from './RemoteMember.js';
import { WorkerClient } from './WorkerClient.js';

export interface AttachedLlamaServerOptions {
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly startTimeoutMs: number;
  /** The Flint worker process that renders for the member (its settings get the member's address and slots). */
  readonly worker: { readonly modulePath: string; readonly execArgv: readonly string[]; readonly settings: WorkerSettings; readonly heartbeatIntervalMs: number; readonly heartbeatTimeoutMs: number };
  readonly logger: Logger;
}

export interface AttachedLlamaServerEvents {
  /** The member answers and its worker is up: its slots can be leased. */
  onUp(worker: WorkerClient, facts: LlamaServerFacts): void;
  onDown(index: number, reason: string): void;
}

/**
 * A remote llama-server member whose prompts this node renders (`upstreams[].render: front`): a
 * Flint worker process (vocabulary only, ServerSlot) renders and tokenizes each turn, incrementally,
 * and sends token ids to the member's slot of the index the slot table chose, so the member needs
 * no chat template and evaluates only what is new; tool calls, thoughts and grammars are this
 * node's. The member is probed (`/health`): it leaves the pool when a probe fails and comes back
 * when one succeeds; its worker is started on the first success and again if it dies.
 */
export class AttachedLlamaServer {
  readonly index: number;
  readonly settings: UpstreamSettings;
  readonly #options: AttachedLlamaServerOptions;
  readonly #events: AttachedLlamaServerEvents;
  readonly #logger: Logger;
  #worker: WorkerClient | undefined;
  #facts: LlamaServerFacts | undefined;
  #isUp = false;
  #timer: NodeJS.Timeout | undefined;
  #isDisposed = false;

  constructor(index: number, settings: UpstreamSettings, options: AttachedLlamaServerOptions, events: AttachedLlamaServerEvents) {
    this.index = index;
    this.settings = settings;
    this.#options = options;
    this.#events = events;
    this.#logger = options.logger.child({ member: settings.name });
  }

  get isUp(): boolean {
    return this.#isUp;
  }

  /** Its worker, while there is one (tests stop it by PID). */
  get worker(): WorkerClient | undefined {
    return this.#worker;
  }

  /** Probes now, then every `probeIntervalMs`. */
  async start(): Promise<void> {
    await this.#probe();
  }

  async #probe(): Promise<void> {
    if (this.#isDisposed) return;
    try {
      const res = await fetch(`${this.settings.url}/health`, { signal: AbortSignal.timeout(this.#options.probeTimeoutMs) });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`/health answered ${res.status}`);
      if (!this.#worker) await this.#startWorker();
      if (!this.#isUp && this.#worker && !this.#isDisposed) {
        this.#isUp = true;
        this.#logger.info({ workerPid: this.#worker.pid }, 'member up (rendered here)');
        this.#events.onUp(this.#worker, this.#facts!);
      }
    } catch (err) {
      this.#setDown(`readiness probe failed: ${(err as Error).message}`);
    } finally {
      if (!this.#isDisposed) this.#timer = setTimeout(() => void this.#probe(), this.#options.probeIntervalMs);
    }
  }

  async #startWorker(): Promise<void> {
    const o = this.#options;
    const facts = await readServerFacts(this.settings.url, this.settings.key);
    const slots = Math.min(this.settings.slots, facts.slots);
    const worker = await WorkerClient.start({
      modulePath: o.worker.modulePath,
      execArgv: o.worker.execArgv,
      settings: { ...o.worker.settings, contextSize: facts.contextSize, slots, server: { url: this.settings.url, key: this.settings.key, name: this.settings.name } },
      index: this.index,
      startTimeoutMs: o.startTimeoutMs,
      heartbeatIntervalMs: o.worker.heartbeatIntervalMs,
      heartbeatTimeoutMs: o.worker.heartbeatTimeoutMs,
      logger: o.logger,
      routingName: this.settings.name,
    });
    if (this.#isDisposed) {
      await worker.dispose();
      return;
    }
    this.#worker = worker;
    this.#facts = { ...facts, slots };
    worker.onExit((reason) => {
      if (this.#worker === worker) this.#worker = undefined;
      this.#setDown(`its worker process ${reason}`);
    });
  }

  #setDown(reason: string): void {
    if (!this.#isUp) return;
    this.#isUp = false;
    this.#logger.warn({ reason }, 'member down');
    this.#events.onDown(this.index, reason);
  }

  async dispose(): Promise<void> {
    this.#isDisposed = true;
    clearTimeout(this.#timer);
    await this.#worker?.dispose();
  }
}

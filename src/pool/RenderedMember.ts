import type { Logger } from '../core/Logger.js';
import type { ServerKind } from '../ipc/messages.js';
import { readServerFacts, type LlamaServerFacts } from './LlamaServerPool.js';
import type { UpstreamSettings } from './RemoteMember.js';
import { healthPaths } from './upstreamRequest.js';
import { fetchMemberLoad, isSaturatedBy } from './memberLoad.js';
import type { MemberObserver } from '../core/members.js';
import type { WorkerClient } from './WorkerClient.js';
import { startServerWorker, type ServerWorkerModule } from './serverWorker.js';

export interface RenderedMemberOptions {
  /** Tokens per slot of members that do not say (vLLM says; Ollama does not): `model.contextSize`. */
  readonly contextSize: number;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly startTimeoutMs: number;
  /** The Flint worker process that renders for the member (its settings get the member's address and slots). */
  readonly worker: ServerWorkerModule;
  readonly logger: Logger;
  /** Sees the member's own load, read at each probe where its kind exports it. */
  readonly observer?: MemberObserver;
}

export interface RenderedMemberEvents {
  /** The member answers and its worker is up: its slots can be leased. */
  onUp(worker: WorkerClient, facts: LlamaServerFacts): void;
  onDown(index: number, reason: string): void;
}

/**
 * A remote member whose prompts this node renders (`upstreams[].render: front`; llama-server, vLLM
 * or Ollama): a Flint worker process (vocabulary only, ServerSlot) renders and tokenizes each turn,
 * incrementally, and sends the member token ids (llama-server: to the slot of the index the slot
 * table chose; vLLM: to its own prefix cache) or the rendered text (Ollama, `raw`), so the member
 * needs no chat template and evaluates only what is new; tool calls, thoughts and grammars are
 * this node's. The member is probed (its kind's health path): it leaves the pool when a probe
 * fails and comes back when one succeeds; its worker is started on the first success and again
 * if it dies.
 */
export class RenderedMember {
  readonly index: number;
  readonly settings: UpstreamSettings;
  readonly #options: RenderedMemberOptions;
  readonly #events: RenderedMemberEvents;
  readonly #logger: Logger;
  #worker: WorkerClient | undefined;
  #facts: LlamaServerFacts | undefined;
  #isUp = false;
  #timer: NodeJS.Timeout | undefined;
  #isDisposed = false;

  constructor(index: number, settings: UpstreamSettings, options: RenderedMemberOptions, events: RenderedMemberEvents) {
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
      const path = healthPaths[this.settings.kind];
      const res = await fetch(`${this.settings.url}${path}`, { headers: this.#auth(), signal: AbortSignal.timeout(this.#options.probeTimeoutMs) });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`${path} answered ${res.status}`);
      if (!this.#worker) await this.#startWorker();
      await this.#readLoad();
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

  #auth(): Record<string, string> {
    return this.settings.key ? { authorization: `Bearer ${this.settings.key}` } : {};
  }

  /** The member's slots, their size and the model name it serves. */
  async #memberFacts(): Promise<LlamaServerFacts & { model: string }> {
    const { kind, url, key, slots, model } = this.settings;
    if (kind === 'llama-server') return { ...(await readServerFacts(url, key)), model };
    const listPath = kind === 'ollama' ? '/api/tags' : '/v1/models';
    const res = await fetch(`${url}${listPath}`, { headers: this.#auth(), signal: AbortSignal.timeout(this.#options.probeTimeoutMs) });
    if (!res.ok) throw new Error(`${listPath} answered ${res.status}`);
    const body = (await res.json()) as { data?: Array<{ id?: string; max_model_len?: number }>; models?: Array<{ name?: string }> };
    const first = kind === 'ollama' ? body.models?.[0]?.name : body.data?.[0]?.id;
    const served = model || first;
    if (!served) throw new Error(`${listPath} lists no model`);
    // vLLM says its context (max_model_len); Ollama's is its num_ctx, which must match model.contextSize.
    const contextSize = (kind === 'vllm' ? body.data?.find((m) => m.id === served)?.max_model_len : undefined) ?? this.#options.contextSize;
    return { contextSize, slots, build: kind, model: served };
  }

  async #startWorker(): Promise<void> {
    const o = this.#options;
    const facts = await this.#memberFacts();
    const slots = Math.min(this.settings.slots, facts.slots);
    const server = { url: this.settings.url, key: this.settings.key, name: this.settings.name, kind: this.settings.kind as ServerKind, model: facts.model };
    const worker = await startServerWorker(o.worker, { index: this.index, server, contextSize: facts.contextSize, slots, startTimeoutMs: o.startTimeoutMs, logger: o.logger, routingName: this.settings.name });
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

  /** The member's own load: a member full with others' requests takes no new sessions while another can. */
  async #readLoad(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    try {
      const load = await fetchMemberLoad(this.settings, (pathname) => fetch(`${this.settings.url}${pathname}`, { headers: this.#auth(), signal: AbortSignal.timeout(this.#options.probeTimeoutMs) }));
      if (!load) return;
      worker.isSaturated = isSaturatedBy(load, this.settings.kind);
      this.#options.observer?.onLoad?.(this.settings.name, load);
    } catch {
      // No load known this time: routing goes by this node's own slots.
    }
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

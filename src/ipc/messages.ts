import type { DiskCacheReport } from '../core/diskCache.js';
import type { FinishReason, GenerateRequest, GenerationTimings, PromptRender, ToolCall, Usage } from '../core/types.js';

/** Bumped whenever a message changes shape; parent and worker refuse to talk across versions. */
export const IPC_VERSION = 5;

/** Settings a worker needs to load its model; sent in the `init` message. */
/** The engines a worker drives with prompts it renders: how each takes a prompt and streams its answer. */
export type ServerKind = 'llama-server' | 'vllm' | 'ollama';

/** Where the engine that holds a worker's KV cache listens, and its key. */
export interface ServerEndpoint {
  readonly url: string;
  readonly key: string;
  /** Its name in errors (the member's, or `llama-server`). */
  readonly name?: string;
  /**
   * `llama-server`: token ids to `/completion`, pinned to the slot (`id_slot`, `cache_prompt`);
   * `vllm`: token ids to `/v1/completions` (its own prefix caching); `ollama`: the rendered text
   * to `/api/generate` with `raw`. Default `llama-server`.
   */
  readonly kind?: ServerKind;
  /** The model name the engine serves (vLLM and Ollama want one). */
  readonly model?: string;
}

export interface WorkerSettings {
  readonly modelPath: string;
  readonly contextSize: number;
  readonly slots: number;
  /** Compute threads for single-token decode steps. */
  readonly threads: number;
  /** Compute threads for prompt batches of at least `batchThreadsMinTokens` tokens. */
  readonly batchThreads: number;
  readonly batchThreadsMinTokens: number;
  readonly batchSize: number;
  readonly gpu: 'auto' | 'off' | 'cuda' | 'vulkan' | 'metal';
  readonly defaultMaxTokens: number;
  /** Ceiling on generated tokens of any request (0 = none beyond the context). */
  readonly maxOutputTokens: number;
  readonly savedPrefixBytes: number;
  readonly minSavedPrefixTokens: number;
  /** Folder of the disk prompt cache that every worker shares (`<dataDir>/prompt-cache`); empty = off. */
  readonly diskCacheDir: string;
  /** This worker's share of the disk prompt cache, in bytes and in entries (0 bytes = off). */
  readonly diskCacheBytes: number;
  readonly diskCacheMaxEntries: number;
  /** Worker processes in the pool: worker i writes the cache subfolders w<j> with j % workers = i. */
  readonly workers: number;
  /** A slot idle this long has what it holds saved, so evicting it later costs no request a copy (0 = off). */
  readonly saveIdleSlotsAfterMs: number;
  /** Deltas closer together than this are sent to the gateway as one message. */
  readonly streamCoalesceMs: number;
  /**
   * A llama-server that holds this worker's KV cache and decodes (`engine.backend: llama-server`):
   * the worker renders and tokenizes prompts and drives the server's slot of the same index.
   */
  readonly server?: ServerEndpoint;
}

/** Parent → worker. */
export type ParentMessage =
  /** `workerIndex` is the worker's place in the pool (stable across its restarts). */
  | { readonly type: 'init'; readonly version: number; readonly settings: WorkerSettings; readonly workerIndex: number }
  /**
   * A chat request's messages may be sent as a tail: the first `baseMessages` messages are those
   * of the previous `generate` on the same slot, which the worker keeps; `request` carries the rest.
   */
  | { readonly type: 'generate'; readonly id: string; readonly slot: number; readonly request: GenerateRequest; readonly baseMessages?: number }
  | { readonly type: 'cancel'; readonly id: string }
  /** Liveness probe; the worker answers `pong` from its event loop. */
  | { readonly type: 'ping'; readonly seq: number }
  | { readonly type: 'shutdown' };

/** Model facts the worker reports once loaded. */
export interface WorkerModelFacts {
  readonly contextSize: number;
  readonly trainContextSize: number;
  readonly architecture: string;
  readonly modelName: string;
  readonly chatWrapper: string;
  readonly hasInfill: boolean;
  readonly threads: number;
  readonly batchThreads: number;
  /** The longest text one token stands for (a lower bound on a prompt's tokens is its length / this). */
  readonly maxTokenChars: number;
  /** Whether a chat turn that continues the slot's previous prompt renders only its new messages (the template passed the probe), else why not. */
  readonly incrementalChat: { readonly isIncremental: boolean; readonly failure?: string };
  /** The chat template writes tool calls (they can be detected and parsed). */
  readonly hasToolCalls: boolean;
  /** The chat template has a thought segment (reasoning is split from the answer). */
  readonly hasThinking: boolean;
}

/** Failure reported for one request; `code` is a FLINT_ERR_* code. */
export interface WireFailure {
  readonly code: string;
  readonly param?: string;
  readonly details?: Record<string, string | number>;
  readonly message: string;
}

export type { DiskCacheBadReason, DiskCacheReport } from '../core/diskCache.js';

/** Worker → parent. */
export type WorkerMessage =
  /** `diskCache`: the disk prompt cache as the worker found it at start (absent when off). */
  | { readonly type: 'ready'; readonly version: number; readonly facts: WorkerModelFacts; readonly diskCache?: DiskCacheReport }
  | {
      readonly type: 'started';
      readonly id: string;
      readonly promptTokens: number;
      /** Prompt tokens not evaluated: held by the slot or restored from a saved prefix. */
      readonly cachedTokens: number;
      /** Of those, tokens restored from a saved prefix. */
      readonly restoredTokens: number;
      /** Of those, tokens copied from another slot of the worker (a fork of a conversation it serves). */
      readonly copiedTokens: number;
      /** Chat prompts: how the prompt was rendered, and how long that took. */
      readonly render?: PromptRender;
      /** The prefix this request evicted: saved while the slot was idle, saved before the request could start, or none evicted. */
      readonly evictionSave: 'none' | 'idle' | 'critical';
      /** A remote member says what came from its cache only in its final usage: count it at `done`. */
      readonly isCacheKnownAtEnd?: boolean;
    }
  | { readonly type: 'delta'; readonly id: string; readonly text: string; readonly tokens: number }
  /** Text of several streams at once (one message per flush): request id, 0 answer / 1 thought, text, tokens. */
  | { readonly type: 'deltas'; readonly items: ReadonlyArray<readonly [id: string, kind: 0 | 1, text: string, tokens: number]> }
  /** Text inside the model's thought segment. */
  | { readonly type: 'reasoning'; readonly id: string; readonly text: string; readonly tokens: number; readonly raw?: string }
  /** Prompt evaluation progress, after each prefill batch. */
  | { readonly type: 'progress'; readonly id: string; readonly evaluatedTokens: number; readonly totalTokens: number }
  | { readonly type: 'tool_call'; readonly id: string; readonly call: ToolCall }
  | {
      readonly type: 'done';
      readonly id: string;
      readonly finishReason: FinishReason;
      readonly usage: Usage;
      readonly timings: Omit<GenerationTimings, 'queueMs'>;
      /** The thought segment as it stands in the context, if the model wrote one. */
      readonly reasoning?: string;
      /** Bytes of saved prefixes this worker holds after the request. */
      readonly savedPrefixBytes: number;
      /** Code completion: the prompt was cut to fit (llama-server's `truncated`). */
      readonly truncated?: boolean;
    }
  | { readonly type: 'failed'; readonly id: string; readonly failure: WireFailure }
  | { readonly type: 'fatal'; readonly message: string }
  /** An idle slot's prefix was saved ahead of eviction: the bytes of saved prefixes now held. */
  | { readonly type: 'saved'; readonly savedPrefixBytes: number }
  /** The disk prompt cache changed (sent before a `done` and after background writes). */
  | { readonly type: 'disk_cache'; readonly report: DiskCacheReport }
  /** A line for the gateway's log (degraded but handled: the worker goes on). */
  | { readonly type: 'log'; readonly level: 'warn' | 'info'; readonly message: string; readonly details?: Readonly<Record<string, string | number>> }
  | { readonly type: 'pong'; readonly seq: number };

import type { GenerateRequest } from '../core/types.js';
import type { WorkerMessage } from '../ipc/messages.js';

/** Events of one generation as its engine reports them. */
export type WorkerEvent = Extract<WorkerMessage, { type: 'started' | 'delta' | 'reasoning' | 'progress' | 'tool_call' | 'done' }>;

/** Limits on what is buffered for a consumer that reads slower than the engine generates. */
export interface RunOptions {
  readonly maxBufferedBytes: number;
  readonly onOverflow: () => void;
}

/** A generation on an engine: its events (read once), and when the engine has stopped it. */
export interface WorkerRun {
  readonly events: AsyncIterable<WorkerEvent>;
  /** Settles once the engine reported `done` or a failure, or died: the slot is then free. Never rejects. */
  readonly finished: Promise<void>;
  /** Chat requests: messages sent to the worker, and messages it already held from the slot's previous request. */
  readonly messages?: { readonly sent: number; readonly kept: number };
}

/**
 * What the scheduler leases slots on: a local worker process (WorkerClient) or a remote engine
 * (RemoteMember: another Flint node, llama-server, vLLM, Ollama, any OpenAI-compatible server).
 */
export interface EngineMember {
  /** Unique in the pool; local workers come first (0..workers-1), then the upstreams. */
  readonly index: number;
  readonly isAlive: boolean;
  /**
   * A remote member's configured name: a session's first request goes to the member its key
   * ranks first by rendezvous hashing over these names, so every front with the same members
   * chooses alike. Undefined for local workers.
   */
  readonly routingName?: string;
  /** A remote member that reports itself full (all its slots busy, requests waiting): new sessions go elsewhere while another can take them. */
  readonly isSaturated?: boolean;
  /** It continues an answer begun elsewhere (`GenerateRequest.continuation`): a turn cut by a failed member migrates to it. */
  readonly canContinue?: boolean;
  /**
   * Runs one generation on `slot`. Aborting `signal` stops it; the events still end with a
   * `done` (finish reason `cancelled`) or a failure, so the caller knows the slot is free.
   */
  run(id: string, slot: number, request: GenerateRequest, signal: AbortSignal, options: RunOptions): WorkerRun;
  /** Registers a callback for saves of idle slots' prefixes (with the bytes now held). */
  onSavedPrefixBytes(handler: (bytes: number) => void): void;
}

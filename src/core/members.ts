/** What the front observes of its remote members (config `upstreams`); pool/ reports it, metrics/ counts it. */

/** How a request on a member ended, for its metrics. */
export type MemberOutcome = 'ok' | 'cancelled' | 'unavailable' | 'rejected' | 'failed';

/**
 * A member's own account of its load, where it exports one: Flint's `/v1/flint/status`,
 * llama-server's `/slots` and `/metrics`, vLLM's `/metrics`.
 */
export interface MemberLoad {
  readonly busySlots: number;
  readonly totalSlots: number;
  /** Requests it holds back for want of a slot (its own queue). */
  readonly waiting: number;
  /** Share of its KV cache in use (0..1), where it says. */
  readonly kvUsage?: number;
}

/** Per-member observations (metrics/ implements them). */
export interface MemberObserver {
  /** A request ended; `firstOutputS`: seconds from sending it to the member's first output, if any. */
  onRequest(member: string, outcome: MemberOutcome, firstOutputS: number | undefined): void;
  /** The member's load as its last probe read it. */
  onLoad?(member: string, load: MemberLoad): void;
}

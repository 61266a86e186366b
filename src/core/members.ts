/** What the front observes of its remote members (config `upstreams`); pool/ reports it, metrics/ counts it. */

/** How a request on a member ended, for its metrics. */
export type MemberOutcome = 'ok' | 'cancelled' | 'unavailable' | 'rejected' | 'failed';

/** A member's own account of its load, where it exports one (Flint's `/v1/flint/status`). */
export interface MemberLoad {
  readonly busySlots: number;
  readonly totalSlots: number;
  readonly waiting: number;
}

/** Per-member observations (metrics/ implements them). */
export interface MemberObserver {
  /** A request ended; `firstOutputS`: seconds from sending it to the member's first output, if any. */
  onRequest(member: string, outcome: MemberOutcome, firstOutputS: number | undefined): void;
  /** The member's load as its last probe read it. */
  onLoad?(member: string, load: MemberLoad): void;
}

/** One slot as the status view shows it (SlotTable's snapshot). */
export interface SlotSnapshot {
  readonly worker: number;
  readonly slot: number;
  readonly isBusy: boolean;
  readonly heldTokens: number;
  /** The (scoped) affinity key pinned to the slot, if any. */
  readonly cacheKey: string | undefined;
}

/** What the gateway reports about its slots and queue. */
export interface GatewayState {
  readonly slots: readonly SlotSnapshot[];
  readonly queueDepth: number;
  readonly queueLimit: number;
}

/** `GET /v1/flint/status` for one caller (tenant): the console's live view. */
export interface StatusSource {
  status(tenant: string): Promise<Record<string, unknown>>;
}

/** One stored response: the response object and the conversation items around it, as JSON-able data. */
export interface StoredResponse {
  readonly id: string;
  /** The tenant that created it (a hash of its key); nobody else may see it. */
  readonly owner: string;
  readonly createdAtS: number;
  /** The final response object as returned to the client. */
  readonly response: Record<string, unknown>;
  /** Every input item of this turn, earlier turns of a `previous_response_id` chain included. */
  readonly inputItems: ReadonlyArray<Record<string, unknown>>;
  /** The items the model produced. */
  readonly outputItems: ReadonlyArray<Record<string, unknown>>;
  /**
   * The session the response belongs to (its lineage): the cache key it ran under, else the id
   * of the chain's first response. A continuation keeps it, so a whole chain keeps one key.
   */
  readonly sessionKey?: string;
}

/** Durable storage of responses created with `store: true`; bounded by count and age. */
export interface ResponseStore {
  save(entry: StoredResponse): void;
  /** The response `id` if `owner` made it. */
  get(id: string, owner: string): StoredResponse | undefined;
  /** An output item of one of `owner`'s stored responses, by item id (for `item_reference` inputs). */
  findItem(id: string, owner: string): Record<string, unknown> | undefined;
  /** Deletes `owner`'s response `id`; false when there is none. */
  delete(id: string, owner: string): boolean;
  /** Number of stored responses (for metrics). */
  count(): number;
  close(): void;
}

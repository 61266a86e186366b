/** One stored response: the response object and the conversation items around it, as JSON-able data. */
export interface StoredResponse {
  readonly id: string;
  readonly createdAtS: number;
  /** The final response object as returned to the client. */
  readonly response: Record<string, unknown>;
  /** Every input item of this turn, earlier turns of a `previous_response_id` chain included. */
  readonly inputItems: ReadonlyArray<Record<string, unknown>>;
  /** The items the model produced. */
  readonly outputItems: ReadonlyArray<Record<string, unknown>>;
}

/** Durable storage of responses created with `store: true`; bounded by count and age. */
export interface ResponseStore {
  save(entry: StoredResponse): void;
  get(id: string): StoredResponse | undefined;
  /** An output item of a stored response, by item id (for `item_reference` inputs). */
  findItem(id: string): Record<string, unknown> | undefined;
  delete(id: string): boolean;
  /** Number of stored responses (for metrics). */
  count(): number;
  close(): void;
}

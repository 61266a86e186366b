import { LruMap } from '../utils/LruMap.js';

/** What a request offers to tell its session apart. */
export interface SessionRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Query parameters (the WebSocket URL's `?session=`). */
  readonly query?: Readonly<Record<string, unknown>>;
  readonly body?: { readonly prompt_cache_key?: unknown; readonly previous_response_id?: unknown };
  /** Who sent it (a hash of its API key, never the key). */
  readonly tenant: string;
}

export type SessionKeySource = 'header' | 'query' | 'prompt_cache_key' | 'lineage' | 'api_key';

/**
 * The affinity key of a request, for routing across members: the first configured header that
 * names a session (`x-flint-session`, Codex's `session-id` / `session_id`), else `?session=`,
 * else `prompt_cache_key`, else the session of the response `previous_response_id` continues
 * (lineage, learned as responses complete; bounded), else the API key's tenant. Keys are
 * scoped by tenant, so two keys never share a session by name.
 */
export class SessionKeys {
  readonly #headers: readonly string[];
  readonly #lineage: LruMap<string, string>;

  constructor(headers: readonly string[], lineageEntries: number) {
    this.#headers = headers.map((h) => h.toLowerCase());
    this.#lineage = new LruMap(lineageEntries);
  }

  keyOf(request: SessionRequest): { key: string; source: SessionKeySource } {
    const scoped = (value: string) => `${request.tenant}\u0000${value}`;
    for (const name of this.#headers) {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value[0] : value;
      if (text) return { key: scoped(text), source: 'header' };
    }
    const query = request.query?.session;
    if (typeof query === 'string' && query) return { key: scoped(query), source: 'query' };
    const cacheKey = request.body?.prompt_cache_key;
    if (typeof cacheKey === 'string' && cacheKey) return { key: scoped(`pck:${cacheKey}`), source: 'prompt_cache_key' };
    const previous = request.body?.previous_response_id;
    if (typeof previous === 'string') {
      const key = this.#lineage.get(scoped(previous));
      if (key !== undefined) return { key, source: 'lineage' };
    }
    return { key: scoped('api-key'), source: 'api_key' };
  }

  /** Response `responseId` of `tenant` belongs to session `key`: a continuation of it routes there too. */
  learn(tenant: string, responseId: string, key: string): void {
    this.#lineage.set(`${tenant}\u0000${responseId}`, key);
  }
}

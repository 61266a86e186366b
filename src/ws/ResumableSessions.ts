import type { Conversation } from '../responses/ResponseService.js';
import { LruMap } from '../utils/LruMap.js';

/**
 * What a Responses WebSocket session keeps between sockets: its connection-local responses
 * (for `previous_response_id` with `store: false`) and the key its slot pin is held under.
 */
export interface SessionState {
  readonly cache: LruMap<string, Conversation>;
  /** The session's id: the cache key of its lanes, unless a request sets `prompt_cache_key`. */
  readonly sessionKey: string;
  /** That key as the slot table holds it (scoped like the cache), to release the slot pin. */
  readonly affinityKey: string;
}

/** Limits of {@link ResumableSessions} (config `websocket`). */
export interface ResumableLimits {
  readonly resumeGraceMs: number;
  readonly maxResumableSessions: number;
  readonly maxResumableBytes: number;
}

/** Observations for metrics/. */
export interface ResumableObserver {
  onKept(sessions: number, bytes: number): void;
  onResumed(): void;
  /** A kept session was dropped: its grace period ended, or it made room for a newer one. */
  onDropped(reason: 'expired' | 'evicted'): void;
}

interface Kept {
  readonly state: SessionState;
  readonly bytes: number;
  readonly timer: NodeJS.Timeout;
}

interface Live {
  readonly state: SessionState;
  sockets: number;
}

/**
 * Sessions that outlive a socket. A socket opened with a session name (a handshake header or
 * `?session=`) joins that session: a live one is shared with its other sockets, a kept one is
 * resumed, else it starts. When the last socket of a session closes, the session is kept for
 * `resumeGraceMs` (bounded in count and bytes, oldest dropped first); when that ends its slot
 * pin is released. Sessions are keyed by tenant and name, so a name never opens another API
 * key's session.
 */
export class ResumableSessions {
  readonly #limits: ResumableLimits;
  readonly #observer: ResumableObserver | undefined;
  /** Called when a session's state is gone for good (its slot pin can be released). */
  readonly #onEnd: (state: SessionState) => void;
  readonly #live = new Map<string, Live>();
  readonly #kept: LruMap<string, Kept>;
  #bytes = 0;

  constructor(limits: ResumableLimits, onEnd: (state: SessionState) => void, observer?: ResumableObserver) {
    this.#limits = limits;
    this.#onEnd = onEnd;
    this.#observer = observer;
    // Bounded by maxResumableSessions in #keep; the map's own bound is a backstop.
    this.#kept = new LruMap(Math.max(1, limits.maxResumableSessions + 1));
  }

  /** Sessions kept for resumption, and their bytes. */
  get kept(): { sessions: number; bytes: number } {
    return { sessions: this.#kept.size, bytes: this.#bytes };
  }

  /** The state a new socket of session `name` (of `tenant`) starts with; `fresh` makes one for a new session. */
  open(tenant: string, name: string, fresh: () => SessionState): SessionState {
    const key = `${tenant}\u0000${name}`;
    const live = this.#live.get(key);
    if (live) {
      live.sockets++;
      return live.state;
    }
    const kept = this.#kept.get(key);
    let state: SessionState;
    if (kept) {
      this.#forget(key, kept);
      this.#observer?.onResumed();
      state = kept.state;
    } else state = fresh();
    this.#live.set(key, { state, sockets: 1 });
    return state;
  }

  /** A socket of session `name` closed: when it was the last one, the session is kept (or ended). */
  close(tenant: string, name: string): void {
    const key = `${tenant}\u0000${name}`;
    const live = this.#live.get(key);
    if (!live) return;
    if (--live.sockets > 0) return;
    this.#live.delete(key);
    this.#keep(key, live.state);
  }

  /** Ends every kept session (server shutdown). */
  dispose(): void {
    for (const [key, kept] of [...this.#kept.entries()]) {
      this.#forget(key, kept);
      this.#onEnd(kept.state);
    }
  }

  #keep(key: string, state: SessionState): void {
    const bytes = conversationBytes(state);
    if (this.#limits.resumeGraceMs === 0 || this.#limits.maxResumableSessions === 0 || bytes > this.#limits.maxResumableBytes) {
      this.#onEnd(state);
      return;
    }
    // Oldest first, until the new one fits.
    for (const [oldest, kept] of this.#kept.entries()) {
      if (this.#kept.size < this.#limits.maxResumableSessions && this.#bytes + bytes <= this.#limits.maxResumableBytes) break;
      this.#forget(oldest, kept);
      this.#onEnd(kept.state);
      this.#observer?.onDropped('evicted');
    }
    const timer = setTimeout(() => {
      const kept = this.#kept.get(key);
      if (!kept) return;
      this.#forget(key, kept);
      this.#onEnd(kept.state);
      this.#observer?.onDropped('expired');
    }, this.#limits.resumeGraceMs);
    timer.unref();
    this.#kept.set(key, { state, bytes, timer });
    this.#bytes += bytes;
    this.#observer?.onKept(this.#kept.size, this.#bytes);
  }

  #forget(key: string, kept: Kept): void {
    clearTimeout(kept.timer);
    this.#kept.delete(key);
    this.#bytes -= kept.bytes;
    this.#observer?.onKept(this.#kept.size, this.#bytes);
  }
}

/**
 * Approximate bytes a session's responses hold: each conversation item once (the
 * conversations of one session share the items of their common history).
 */
export function conversationBytes(state: SessionState): number {
  const seen = new Set<unknown>();
  let bytes = 0;
  for (const [id, conversation] of state.cache.entries()) {
    bytes += id.length + 64;
    for (const item of [...conversation.inputItems, ...conversation.outputItems]) {
      if (seen.has(item)) continue;
      seen.add(item);
      bytes += JSON.stringify(item)?.length ?? 0;
    }
  }
  return bytes;
}

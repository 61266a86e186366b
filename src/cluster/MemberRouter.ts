import { LruMap } from '../utils/LruMap.js';
import { keyHash, rendezvousScore } from '../utils/rendezvous.js';

/** One member of a pool (a Flint node, or an engine server) as the router sees it. */
export interface Member {
  /** Stable name: hashing uses it, so every front instance ranks members alike. */
  readonly name: string;
  /** Relative capacity (e.g. slots); a member of weight 2 gets about twice the keys of weight 1. */
  readonly weight: number;
}

/** A member's load when the router decides: requests it serves or queues now, and how many it takes. */
export interface MemberLoad {
  readonly inFlight: number;
  readonly capacity: number;
}

/** Why a member was chosen. */
export type RouteReason = 'warm' | 'prefix' | 'hash' | 'spill';

export interface RouteDecision {
  readonly member: string;
  readonly reason: RouteReason;
  /** Rank of the chosen member among the key's candidates (0: its first choice). */
  readonly rank: number;
}

/** Settings of {@link MemberRouter}. */
export interface MemberRouterOptions {
  /** Candidates per key: a key only ever spills to its first R members by rendezvous rank. */
  readonly candidates: number;
  /**
   * A member is "full" for spill purposes when its in-flight requests reach this multiple of its
   * fair share of the pool's in-flight total (bounded-load hashing), or its capacity.
   */
  readonly loadFactor: number;
  /** Sessions the warm table remembers, and prefix hashes the prefix index keeps. */
  readonly warmSessions: number;
  readonly prefixEntries: number;
}

/**
 * Chooses the member for a request so that one session keeps landing on one member (its KV
 * cache), and load spreads evenly over keys:
 *   1. the member that last served the session (warm table), while it is among the key's R
 *      candidates and not full;
 *   2. the member that served the longest prefix of this prompt (approximate prefix index, by
 *      chained block hashes), under the same conditions;
 *   3. weighted rendezvous hashing (highest random weight): the key's first candidate that is not
 *      full, else the least loaded of its R candidates (spill never leaves the R).
 * Deterministic: two front instances with the same members and loads choose alike, and adding a
 * member moves only the keys it wins (about 1/(N+1)); removing one moves only its own.
 */
export class MemberRouter {
  readonly #options: MemberRouterOptions;
  #members: Member[] = [];
  readonly #warm: LruMap<string, string>;
  readonly #prefixes: LruMap<number, string>;

  constructor(options: MemberRouterOptions) {
    this.#options = options;
    this.#warm = new LruMap(options.warmSessions);
    this.#prefixes = new LruMap(options.prefixEntries);
  }

  setMembers(members: readonly Member[]): void {
    this.#members = [...members].filter((m) => m.weight > 0);
    const names = new Set(this.#members.map((m) => m.name));
    for (const [session, member] of [...this.#warm.entries()]) if (!names.has(member)) this.#warm.delete(session);
    for (const [hash, member] of [...this.#prefixes.entries()]) if (!names.has(member)) this.#prefixes.delete(hash);
  }

  /** The key's members from best to worst by weighted rendezvous score (all of them). */
  rank(key: string): string[] {
    const hashed = keyHash(key);
    return this.#members
      .map((m) => ({ name: m.name, score: rendezvousScore(hashed, m.name, m.weight) }))
      .sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1))
      .map((s) => s.name);
  }

  /**
   * The member for a request of session `key` whose prompt has the chained block hashes
   * `prefix` (may be empty), given each member's load. Undefined when there is no member.
   */
  choose(key: string, prefix: readonly number[], load: (member: string) => MemberLoad | undefined): RouteDecision | undefined {
    const candidates = this.rank(key).slice(0, Math.max(1, this.#options.candidates));
    if (candidates.length === 0) return undefined;
    const loads = new Map(candidates.map((name) => [name, load(name)] as const));
    const total = [...this.#members].reduce((sum, m) => sum + (load(m.name)?.inFlight ?? 0), 0);
    const totalWeight = this.#members.reduce((sum, m) => sum + m.weight, 0);
    const isFull = (name: string) => {
      const l = loads.get(name);
      if (!l) return true; // down, or no load known: not a target
      if (l.inFlight >= l.capacity) return true;
      const weight = this.#members.find((m) => m.name === name)?.weight ?? 1;
      const fairShare = ((total + 1) * weight) / totalWeight;
      return l.inFlight + 1 > Math.max(1, Math.ceil(this.#options.loadFactor * fairShare));
    };
    const warm = this.#warm.get(key);
    if (warm !== undefined && candidates.includes(warm) && !isFull(warm)) return { member: warm, reason: 'warm', rank: candidates.indexOf(warm) };
    for (let i = prefix.length - 1; i >= 0; i--) {
      const holder = this.#prefixes.get(prefix[i]);
      if (holder !== undefined && candidates.includes(holder) && !isFull(holder)) return { member: holder, reason: 'prefix', rank: candidates.indexOf(holder) };
    }
    const open = candidates.findIndex((name) => !isFull(name));
    if (open === 0) return { member: candidates[0], reason: 'hash', rank: 0 };
    if (open > 0) return { member: candidates[open], reason: 'spill', rank: open };
    // Every candidate is full: the least loaded of them (relative to capacity), never beyond the R.
    let best = 0;
    const usage = (name: string) => {
      const l = loads.get(name);
      return l ? l.inFlight / Math.max(1, l.capacity) : Infinity;
    };
    for (let i = 1; i < candidates.length; i++) if (usage(candidates[i]) < usage(candidates[best])) best = i;
    return { member: candidates[best], reason: 'spill', rank: best };
  }

  /** A member served session `key` with a prompt of these block hashes: it holds them now. */
  served(key: string, prefix: readonly number[], member: string): void {
    this.#warm.set(key, member);
    for (const h of prefix) this.#prefixes.set(h, member);
  }
}

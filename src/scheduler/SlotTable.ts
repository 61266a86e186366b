import { LruMap } from '../utils/LruMap.js';
import type { EngineMember } from '../pool/EngineMember.js';
import { sharedChars, type PromptFingerprint } from './fingerprint.js';
import type { SlotPlacement } from '../core/types.js';
import type { SlotSnapshot } from '../core/status.js';
import { rankByRendezvous } from '../utils/rendezvous.js';

/** How a slot was chosen, from best to worst for the prompt cache. */
export type RouteKind = 'affinity' | 'prefix' | 'copy' | 'saved' | 'hash' | 'tenant' | 'cold';

/** A slot held by one request until the worker reports it has stopped. */
export interface SlotLease {
  readonly worker: EngineMember;
  readonly slot: number;
  readonly route: RouteKind;
  /** The request's session ran on another slot before and could not go back to it, and why. */
  readonly affinityBreak?: AffinityBreak;
}

/**
 * Why a session left its slot: `busy` (its slot was serving something else), `evicted` (another
 * session took its slot over), `down` (its worker or member went away), `moved` (its slot was
 * free, but another one held more of the prompt).
 */
export type AffinityBreak = 'busy' | 'evicted' | 'down' | 'moved';

/** Sessions whose slot pin was lost (evicted or gone) remembered, to name the cause of the break. */
const maxLostPins = 4096;

interface SlotState {
  readonly worker: EngineMember;
  readonly slot: number;
  isBusy: boolean;
  lastUsed: number;
  cacheKey: string | undefined;
  fingerprint: PromptFingerprint | undefined;
  /** Cache scope of the prefix the slot holds: other scopes never count it as shared. */
  scope: string | undefined;
  /** Tokens the slot holds, as its last request reported them (prompt, then prompt + output). */
  heldTokens: number;
}


/** Remembered hints of prefixes a worker saved to host memory when their slot was taken over. */
const maxSavedHints = 1024;

/**
 * Every slot of every live worker, what prefix each holds, and which worker saved which evicted
 * prefix. Chooses a slot for a request in this order:
 *   1. the idle slot that last served the same cache key (session, previous response,
 *      `prompt_cache_key`) if it still holds part of this prompt;
 *   2. the idle slot whose held prefix is longest, unless that prefix is busy or pinned to
 *      another cache key and this prompt would cut it short (another lane or session forking
 *      that conversation, or sharing its system prompt): then another idle slot of the same
 *      worker, which copies the shared prefix from that slot (`copy`);
 *   3. an idle slot on the worker that saved this prompt's prefix when it was evicted;
 *   4. with a cache key and named remote members idle: the member the key ranks first by
 *      rendezvous hashing (weighted by its slots) among those with an idle slot (and not
 *      saturated by other clients, while another is not), so that fronts that share members
 *      send a session to the same one (`hash`); only among the key's first R members by that
 *      rank (`candidates`): with all R busy the request waits for one of them (bounded spill);
 *   5. the least recently used idle slot.
 * Otherwise affinity is only a preference: under pressure any idle slot serves any request.
 */
export class SlotTable {
  #slots: SlotState[] = [];
  #clock = 0;
  readonly #savedHints = new LruMap<PromptFingerprint, { worker: number; scope: string | undefined }>(maxSavedHints);
  /** Cache keys whose only pinned slot was taken over or went away, and which. */
  readonly #lostPins = new LruMap<string, 'evicted' | 'down'>(maxLostPins);
  /** R: a request with a cache key runs only on the first R named members its key ranks (bounded spill). */
  readonly #candidates: number;

  constructor(options: { candidates?: number } = {}) {
    this.#candidates = Math.max(1, options.candidates ?? Infinity);
  }

  get total(): number {
    return this.#slots.length;
  }

  get busy(): number {
    let n = 0;
    for (const s of this.#slots) if (s.isBusy) n++;
    return n;
  }

  /** Whether a live member with slots here passes `test`. */
  hasMember(test: (member: EngineMember) => boolean): boolean {
    return this.#slots.some((s) => s.worker.isAlive && test(s.worker));
  }

  /** Busy and total slots of each live worker, by worker index. */
  byWorker(): Map<number, { busy: number; total: number }> {
    const out = new Map<number, { busy: number; total: number }>();
    for (const s of this.#slots) {
      const entry = out.get(s.worker.index) ?? { busy: 0, total: 0 };
      entry.total++;
      if (s.isBusy) entry.busy++;
      out.set(s.worker.index, entry);
    }
    return out;
  }

  addWorker(worker: EngineMember, slots: number): void {
    for (let slot = 0; slot < slots; slot++) {
      this.#slots.push({ worker, slot, isBusy: false, lastUsed: 0, cacheKey: undefined, fingerprint: undefined, scope: undefined, heldTokens: 0 });
    }
  }

  /** Drops a worker's slots and its saved-prefix hints (its memory died with it); returns whether it had any. */
  removeWorker(index: number): boolean {
    const before = this.#slots.length;
    for (const s of this.#slots) if (s.worker.index === index && s.cacheKey !== undefined) this.#lostPins.set(s.cacheKey, 'down');
    this.#slots = this.#slots.filter((s) => s.worker.index !== index);
    for (const [fingerprint, hint] of [...this.#savedHints.entries()]) if (hint.worker === index) this.#savedHints.delete(fingerprint);
    return this.#slots.length !== before;
  }

  /** `only`: the members this request may run on (all when undefined). */
  lease(fingerprint: PromptFingerprint, cacheKey: string | undefined, hint?: SlotPlacement, scope?: string, only?: (member: EngineMember) => boolean): SlotLease | undefined {
    let idle = this.#slots.filter((s) => !s.isBusy && s.worker.isAlive && (only === undefined || only(s.worker)));
    if (idle.length === 0) return undefined;
    /** What a slot's prefix shares with this prompt; nothing when another scope left it. */
    const sharedWith = (s: SlotState) => (s.scope === scope ? sharedChars(s.fingerprint, fingerprint) : 0);
    // Bounded spill: a session runs on its key's first R members (or a local worker), or where its
    // conversation is (a member with a slot pinned to its key, or a slot whose whole prompt this
    // one continues). A prefix another session left elsewhere (the system message every session
    // of one agent shares) does not draw it outside its R.
    const ranked = cacheKey === undefined ? [] : this.#rankedMembers(cacheKey);
    const allowed = ranked.length > this.#candidates ? new Set(ranked.slice(0, this.#candidates)) : undefined;
    if (allowed) {
      const continues = (s: SlotState) => s.fingerprint !== undefined && sharedWith(s) >= (s.fingerprint.chars.at(-1) ?? Infinity);
      // Members the session ran on: one of their slots is pinned to its key.
      const own = new Set(this.#slots.filter((s) => s.cacheKey === cacheKey).map((s) => s.worker));
      idle = idle.filter((s) => s.worker.routingName === undefined || allowed.has(s.worker) || own.has(s.worker) || continues(s));
      if (idle.length === 0) return undefined;
    }
    let chosen: SlotState | undefined;
    let route: RouteKind = 'cold';
    if (hint) {
      // The client carried the slot of its last request (x-codex-turn-state): honour it while that slot holds the prefix.
      chosen = idle.find((s) => s.worker.index === hint.worker && s.slot === hint.slot && sharedWith(s) > 0);
      if (chosen) route = 'affinity';
    }
    if (!chosen && cacheKey !== undefined) {
      chosen = idle.find((s) => s.cacheKey === cacheKey && sharedWith(s) > 0);
      if (chosen) route = 'affinity';
    }
    if (!chosen) {
      const copy = this.#copyTarget(idle, cacheKey, sharedWith);
      if (copy) {
        chosen = copy;
        route = 'copy';
      }
    }
    if (!chosen) {
      let best = 0;
      for (const s of idle) {
        const shared = sharedWith(s);
        if (shared > best || (shared === best && shared > 0 && chosen && s.lastUsed > chosen.lastUsed)) {
          best = shared;
          chosen = s;
        }
      }
      if (chosen) route = 'prefix';
    }
    if (!chosen) {
      const worker = this.#savedWorkerFor(fingerprint, scope);
      if (worker !== undefined) {
        chosen = leastRecentlyUsed(idle.filter((s) => s.worker.index === worker));
        if (chosen) route = 'saved';
      }
    }
    if (!chosen && cacheKey !== undefined) {
      // Where nothing of it is held yet, a session goes only to its key's first R members (or a
      // local worker), so its prefix lives on at most R; it waits rather than spread.
      const open = allowed ? idle.filter((s) => s.worker.routingName === undefined || allowed.has(s.worker)) : idle;
      if (open.length === 0) return undefined;
      // The first it ranks with an idle slot; members full with others' requests only when no other can take it.
      const withIdle = new Set(open.map((s) => s.worker));
      const member = ranked.find((m) => withIdle.has(m) && m.isSaturated !== true) ?? ranked.find((m) => withIdle.has(m));
      chosen = leastRecentlyUsed(member ? open.filter((s) => s.worker === member) : open);
      if (member) route = 'hash';
    }
    if (!chosen && cacheKey === undefined && idle.some((s) => s.worker.routingName !== undefined)) {
      // No session key at all: the least loaded member, ties broken by the tenant's (the API
      // key's) rendezvous rank, so a client's one-off requests share the prefix caches of one
      // member while members are equally free, and spread as soon as one is busier.
      chosen = this.#leastLoadedFor(idle, scope ?? 'shared');
      if (chosen) route = 'tenant';
    }
    chosen ??= leastRecentlyUsed(idle)!;
    const affinityBreak = cacheKey === undefined || chosen.cacheKey === cacheKey ? undefined : this.#breakOf(cacheKey);
    // The slot's previous prefix is being replaced: its worker keeps it in saved prefixes.
    if (chosen.fingerprint && sharedWith(chosen) === 0) this.#savedHints.set(chosen.fingerprint, { worker: chosen.worker.index, scope: chosen.scope });
    chosen.isBusy = true;
    chosen.lastUsed = ++this.#clock;
    const evicted = chosen.cacheKey;
    if (evicted !== undefined && evicted !== cacheKey && !this.#slots.some((s) => s !== chosen && s.cacheKey === evicted)) this.#lostPins.set(evicted, 'evicted');
    chosen.cacheKey = cacheKey;
    chosen.fingerprint = fingerprint;
    chosen.scope = scope;
    return affinityBreak ? { worker: chosen.worker, slot: chosen.slot, route, affinityBreak } : { worker: chosen.worker, slot: chosen.slot, route };
  }

  /** `key` gets a slot not pinned to it: why, if it had one (undefined for a session new here). */
  #breakOf(key: string): AffinityBreak | undefined {
    const pinned = this.#slots.filter((s) => s.cacheKey === key && s.worker.isAlive);
    if (pinned.length > 0) return pinned.every((s) => s.isBusy) ? 'busy' : 'moved';
    const lost = this.#lostPins.get(key);
    if (lost !== undefined) this.#lostPins.delete(key);
    return lost;
  }

  /** The live named members from the one `key` ranks first to the last (weighted rendezvous hashing; weight: its slots). */
  #rankedMembers(key: string): EngineMember[] {
    const slots = new Map<EngineMember, number>();
    for (const s of this.#slots) if (s.worker.isAlive && s.worker.routingName !== undefined) slots.set(s.worker, (slots.get(s.worker) ?? 0) + 1);
    return rankByRendezvous(key, [...slots].map(([member, weight]) => ({ member, name: member.routingName!, weight }))).map((r) => r.member);
  }

  /** The idle slot of the member with the smallest busy share (local workers count as ranked last), ties by `key`'s rank. */
  #leastLoadedFor(idle: SlotState[], key: string): SlotState | undefined {
    const ranked = this.#rankedMembers(key);
    const rankOf = new Map(ranked.map((m, i) => [m, i]));
    const busy = new Map<EngineMember, { busy: number; total: number }>();
    for (const s of this.#slots) {
      if (!s.worker.isAlive) continue;
      const load = busy.get(s.worker) ?? { busy: 0, total: 0 };
      load.total++;
      if (s.isBusy) load.busy++;
      busy.set(s.worker, load);
    }
    const score = (m: EngineMember) => {
      const load = busy.get(m)!;
      return [m.isSaturated === true ? 1 : 0, load.busy / load.total, rankOf.get(m) ?? ranked.length];
    };
    let member: EngineMember | undefined;
    for (const s of idle) if (!member || isGreater(score(member), score(s.worker))) member = s.worker;
    return member ? leastRecentlyUsed(idle.filter((s) => s.worker === member)) : undefined;
  }

  /** A session ended: its slots (that of each of its `/`-suffixed lane keys too) keep their tokens (still reusable by prefix) but lose the pin. */
  forgetAffinity(cacheKey: string): void {
    const lanes = `${cacheKey}/`;
    for (const s of this.#slots) if (s.cacheKey === cacheKey || s.cacheKey?.startsWith(lanes)) s.cacheKey = undefined;
  }

  /** Every slot of the live workers, by worker and slot index. */
  snapshot(): SlotSnapshot[] {
    return this.#slots
      .map((s) => ({ worker: s.worker.index, slot: s.slot, isBusy: s.isBusy, heldTokens: s.heldTokens, cacheKey: s.cacheKey }))
      .sort((a, b) => a.worker - b.worker || a.slot - b.slot);
  }

  /** What the worker reported the leased slot holds now. */
  noteHeld(lease: SlotLease, tokens: number): void {
    const state = this.#slots.find((s) => s.worker === lease.worker && s.slot === lease.slot);
    if (state) state.heldTokens = tokens;
  }

  release(lease: SlotLease): void {
    const state = this.#slots.find((s) => s.worker === lease.worker && s.slot === lease.slot);
    if (state) state.isBusy = false;
  }

  /**
   * Rule 2's exception: the slot holding the longest prefix of this prompt is busy, or pinned to
   * another cache key with more than this prompt shares. Returns the idle slot of its worker to
   * copy it into (the one sharing most of the prompt itself, then unpinned ones, then the least
   * recently used), or undefined.
   */
  #copyTarget(idle: SlotState[], cacheKey: string | undefined, sharedWith: (s: SlotState) => number): SlotState | undefined {
    let source: SlotState | undefined;
    let best = 0;
    for (const s of this.#slots) {
      if (!s.worker.isAlive) continue;
      const shared = sharedWith(s);
      if (shared > best || (shared === best && shared > 0 && source && !s.isBusy && source.isBusy)) {
        best = shared;
        source = s;
      }
    }
    if (!source) return undefined;
    const heldChars = source.fingerprint?.chars.at(-1) ?? 0;
    const wouldCut = best < heldChars && source.cacheKey !== undefined && source.cacheKey !== cacheKey;
    if (!source.isBusy && !wouldCut) return undefined;
    const rank = (s: SlotState) => [sharedWith(s), s.cacheKey === undefined ? 1 : 0, -s.lastUsed];
    let target: SlotState | undefined;
    for (const s of idle) {
      if (s === source || s.worker !== source.worker) continue;
      if (!target || isGreater(rank(s), rank(target))) target = s;
    }
    return target;
  }

  #savedWorkerFor(fingerprint: PromptFingerprint, scope: string | undefined): number | undefined {
    let best = 0;
    let worker: number | undefined;
    for (const [saved, hint] of this.#savedHints.entries()) {
      const shared = hint.scope === scope ? sharedChars(saved, fingerprint) : 0;
      if (shared > best) {
        best = shared;
        worker = hint.worker;
      }
    }
    return worker;
  }
}

/** Lexicographic comparison of two equally long rankings. */
function isGreater(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return false;
}

function leastRecentlyUsed(slots: SlotState[]): SlotState | undefined {
  let best: SlotState | undefined;
  for (const s of slots) if (!best || s.lastUsed < best.lastUsed) best = s;
  return best;
}

import { existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import type { DiskPrefixCache } from './DiskPrefixCache.js';
import { commonPrefix, isPrefixOf } from './tokenPrefix.js';

export { commonPrefix } from './tokenPrefix.js';

/** A sequence's KV state kept in a state file, keyed by the exact tokens it holds. */
interface SavedPrefix {
  /** The cache scope (tenant) whose request left these tokens. */
  readonly scope: string;
  readonly tokens: readonly Token[];
  readonly file: string;
  readonly bytes: number;
  lastUsed: number;
}

/**
 * KV states of prefixes evicted from slots, kept by this worker (bounded in bytes, least
 * recently used dropped first) and restored when a request with that prefix returns. States
 * come only from this worker's own model, and an entry is used only for the exact tokens it
 * holds, so a state can never be mixed with another conversation or model.
 * node-llama-cpp saves and loads sequence state only through files, so each state stays in its
 * file: on tmpfs (`/dev/shm`, host memory) where there is one, otherwise in the temp folder on
 * disk. Saving and restoring then cost one copy each, and nothing is read back into the heap.
 *
 * With a disk tier, what host memory evicts (least recently used, or a state larger than the
 * whole memory budget) moves to disk instead of being deleted, `find`, `holds` and `restore`
 * cover both tiers, and `close` writes what memory holds to disk; the disk tier outlives the
 * worker. `maxBytes` 0 turns saving off in both tiers.
 */
export class SavedPrefixes {
  readonly #maxBytes: number;
  readonly #entries: SavedPrefix[] = [];
  readonly #dir: string;
  readonly #disk: DiskPrefixCache | undefined;
  #bytes = 0;
  #clock = 0;
  #files = 0;

  constructor(maxBytes: number, disk?: DiskPrefixCache) {
    this.#maxBytes = maxBytes;
    this.#disk = disk;
    // Host memory when /dev/shm can hold the whole budget (Docker gives it 64 MiB unless shm_size says
    // more); otherwise the temp folder on disk, slower but never a write that fails half-way.
    const base = existsSync('/dev/shm') && freeBytes('/dev/shm') >= maxBytes ? '/dev/shm' : tmpdir();
    this.#dir = mkdtempSync(path.join(base, `flint-w${process.pid}-`));
  }

  /** Where the state files live: /dev/shm when it can hold the budget, else the temp folder. */
  get directory(): string {
    return this.#dir;
  }

  /** Bytes of state held in host memory: entries, and evicted ones still waiting for the disk tier. */
  get bytes(): number {
    return this.#bytes + (this.#disk?.pendingBytes ?? 0);
  }

  /** The disk tier, if there is one. */
  get disk(): DiskPrefixCache | undefined {
    return this.#disk;
  }

  /**
   * Saves what `sequence` holds. Entries it extends are replaced; states over the budget go to
   * the disk tier, or are dropped without one. Returns the saved tokens (the entry's own array,
   * for `holds`), or undefined.
   */
  async save(sequence: LlamaContextSequence, scope: string): Promise<readonly Token[] | undefined> {
    if (this.#maxBytes === 0 || sequence.contextTokens.length === 0) return undefined;
    const tokens = sequence.contextTokens.slice();
    const file = path.join(this.#dir, `state-${++this.#files}.bin`);
    let size: number;
    try {
      await sequence.saveStateToFile(file);
      size = (await stat(file)).size;
    } catch {
      // A full /dev/shm (ENOSPC) or a folder someone removed: the prefix is not kept, and the
      // request that evicts it goes on (a later request recomputes it).
      await unlink(file).catch(() => undefined);
      return undefined;
    }
    if (size > this.#maxBytes) {
      // The disk tier takes over the file (and deletes it if it refuses it).
      if (this.#disk) return this.#disk.spill(tokens, scope, file, size) ? tokens : undefined;
      await unlink(file).catch(() => undefined);
      return undefined;
    }
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      if (this.#entries[i].scope === scope && isPrefixOf(this.#entries[i].tokens, tokens)) this.#remove(i);
    }
    this.#entries.push({ scope, tokens, file, bytes: size, lastUsed: ++this.#clock });
    this.#bytes += size;
    // States on their way to disk still take host memory: they count against the budget until written
    // (the state just saved stays, whatever is still being written).
    while (this.#entries.length > 1 && this.bytes > this.#maxBytes) this.#evict(this.#leastRecentlyUsed());
    return this.holds(tokens) ? tokens : undefined;
  }

  /** Whether the entry `save` returned is still kept, in memory or on disk (not dropped for the budget, replaced or restored from memory). */
  holds(tokens: readonly Token[]): boolean {
    return this.#entries.some((e) => e.tokens === tokens) || this.#disk?.holds(tokens) === true;
  }

  /**
   * The saved prefix sharing the most leading tokens with `prompt`, if it shares more than
   * `atLeast`: from host memory, or from disk when an entry there shares more.
   */
  find(prompt: readonly Token[], atLeast: number, scope: string): { tokens: readonly Token[]; shared: number } | undefined {
    let best: SavedPrefix | undefined;
    let bestShared = atLeast;
    for (const entry of this.#entries) {
      if (entry.scope !== scope) continue;
      const shared = commonPrefix(entry.tokens, prompt);
      if (shared > bestShared) {
        best = entry;
        bestShared = shared;
      }
    }
    const fromDisk = this.#disk?.find(prompt, bestShared, scope);
    // A lookup the disk tier could have answered: the prompt is long enough, and memory had nothing.
    if (fromDisk) this.#disk!.noteLookup(true);
    else if (!best && prompt.length > atLeast) this.#disk?.noteLookup(false);
    if (fromDisk) return fromDisk;
    return best ? { tokens: best.tokens, shared: bestShared } : undefined;
  }

  /**
   * Loads the saved state for exactly `tokens` into `sequence`. A state from memory is forgotten
   * (the slot holds it now); one from disk stays there.
   */
  async restore(sequence: LlamaContextSequence, tokens: readonly Token[]): Promise<boolean> {
    const index = this.#entries.findIndex((e) => e.tokens === tokens);
    if (index === -1) return (await this.#disk?.restore(sequence, tokens)) ?? false;
    // Taken out before the await: two slots restoring at once never share (or delete) one entry.
    const [entry] = this.#entries.splice(index, 1);
    this.#bytes -= entry.bytes;
    try {
      await sequence.loadStateFromFile(entry.file, { acceptRisk: true });
      return true;
    } catch {
      // A failed load leaves KV cells the sequence's bookkeeping no longer knows: start it empty (a cache miss).
      await sequence.clearHistory();
      return false;
    } finally {
      unlink(entry.file).catch(() => undefined);
    }
  }

  /**
   * Moves every state held in memory to the disk tier (most recently used first) and waits at
   * most `timeoutMs` for the writes; for a graceful shutdown. Without a disk tier, nothing to do.
   */
  async close(timeoutMs: number): Promise<void> {
    if (!this.#disk) return;
    for (const entry of [...this.#entries].sort((a, b) => b.lastUsed - a.lastUsed)) {
      this.#entries.splice(this.#entries.indexOf(entry), 1);
      this.#bytes -= entry.bytes;
      this.#disk.spill(entry.tokens, entry.scope, entry.file, entry.bytes, { isFlush: true });
    }
    await this.#disk.close(timeoutMs);
  }

  dispose(): void {
    this.#disk?.dispose();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #remove(index: number): void {
    const [entry] = this.#entries.splice(index, 1);
    this.#bytes -= entry.bytes;
    unlink(entry.file).catch(() => undefined);
  }

  /** Leaves memory for the budget: to the disk tier (which takes over the file) when there is one. */
  #evict(index: number): void {
    const [entry] = this.#entries.splice(index, 1);
    this.#bytes -= entry.bytes;
    if (this.#disk) this.#disk.spill(entry.tokens, entry.scope, entry.file, entry.bytes);
    else unlink(entry.file).catch(() => undefined);
  }

  #leastRecentlyUsed(): number {
    let at = 0;
    for (let i = 1; i < this.#entries.length; i++) if (this.#entries[i].lastUsed < this.#entries[at].lastUsed) at = i;
    return at;
  }
}

function freeBytes(dir: string): number {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return 0;
  }
}

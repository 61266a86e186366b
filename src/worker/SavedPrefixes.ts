import { existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';

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
 */
export class SavedPrefixes {
  readonly #maxBytes: number;
  readonly #entries: SavedPrefix[] = [];
  readonly #dir: string;
  #bytes = 0;
  #clock = 0;
  #files = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    // Host memory when /dev/shm can hold the whole budget (Docker gives it 64 MiB unless shm_size says
    // more); otherwise the temp folder on disk, slower but never a write that fails half-way.
    const base = existsSync('/dev/shm') && freeBytes('/dev/shm') >= maxBytes ? '/dev/shm' : tmpdir();
    this.#dir = mkdtempSync(path.join(base, `flint-w${process.pid}-`));
  }

  /** Where the state files live: /dev/shm when it can hold the budget, else the temp folder. */
  get directory(): string {
    return this.#dir;
  }

  /** Bytes of state held. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Saves what `sequence` holds. Entries it extends are replaced; states over the budget are
   * dropped. Returns the saved tokens (the entry's own array, for `holds`), or undefined.
   */
  async save(sequence: LlamaContextSequence, scope: string): Promise<readonly Token[] | undefined> {
    if (this.#maxBytes === 0) return undefined;
    const tokens = sequence.contextTokens.slice();
    const file = path.join(this.#dir, `state-${++this.#files}.bin`);
    await sequence.saveStateToFile(file);
    const { size } = await stat(file);
    if (size > this.#maxBytes) {
      await unlink(file).catch(() => undefined);
      return undefined;
    }
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      if (this.#entries[i].scope === scope && isPrefixOf(this.#entries[i].tokens, tokens)) this.#remove(i);
    }
    this.#entries.push({ scope, tokens, file, bytes: size, lastUsed: ++this.#clock });
    this.#bytes += size;
    while (this.#bytes > this.#maxBytes) this.#remove(this.#leastRecentlyUsed());
    return this.#entries.some((e) => e.tokens === tokens) ? tokens : undefined;
  }

  /** Whether the entry `save` returned is still kept (not dropped for the budget, replaced or restored). */
  holds(tokens: readonly Token[]): boolean {
    return this.#entries.some((e) => e.tokens === tokens);
  }

  /** The saved prefix sharing the most leading tokens with `prompt`, if it shares more than `atLeast`. */
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
    return best ? { tokens: best.tokens, shared: bestShared } : undefined;
  }

  /** Loads the saved state for exactly `tokens` into `sequence` and forgets it (the slot holds it now). */
  async restore(sequence: LlamaContextSequence, tokens: readonly Token[]): Promise<boolean> {
    const index = this.#entries.findIndex((e) => e.tokens === tokens);
    if (index === -1) return false;
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

  dispose(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #remove(index: number): void {
    const [entry] = this.#entries.splice(index, 1);
    this.#bytes -= entry.bytes;
    unlink(entry.file).catch(() => undefined);
  }

  #leastRecentlyUsed(): number {
    let at = 0;
    for (let i = 1; i < this.#entries.length; i++) if (this.#entries[i].lastUsed < this.#entries[at].lastUsed) at = i;
    return at;
  }
}

/** Number of leading tokens `a` and `b` share. */
export function commonPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function isPrefixOf(shorter: readonly Token[], longer: readonly Token[]): boolean {
  return shorter.length <= longer.length && commonPrefix(shorter, longer) === shorter.length;
}

function freeBytes(dir: string): number {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return 0;
  }
}

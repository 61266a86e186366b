import { createHash } from 'node:crypto';
import { link, mkdir, readdir, rename, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import type { DiskCacheBadReason, DiskCacheReport } from '../ipc/messages.js';
import { LruMap } from '../utils/LruMap.js';
import { codeOf, DiskCacheStats } from './DiskCacheStats.js';
import { encodeTrailer, entrySuffix, readEntryHeader, verifyEntryFile, writeEntryFile, type EntryExpectation } from './promptCacheFile.js';
import { isOwnedBy, isTempName, isWriterFolder, removeStaleTemp, tempPath, writerFolder } from './promptCacheFolder.js';
import { commonPrefix, isPrefixOf } from './tokenPrefix.js';

/** How one worker's disk tier is set up. */
export interface DiskPrefixCacheOptions {
  /** The folder all workers share (`<dataDir>/prompt-cache`); worker i writes its subfolders w<j> with j % workers = i. */
  readonly dir: string;
  readonly workerIndex: number;
  readonly workers: number;
  /** This worker's share of the budget: bytes and entries of the subfolders it writes. */
  readonly maxBytes: number;
  readonly maxEntries: number;
  /** The model file's identity and the context's state format (see stateIdentity.ts), and the longest state a sequence loads. */
  readonly model: string;
  readonly format: string;
  readonly maxTokens: number;
  /** Bytes of evicted states waiting to be written (their host-memory files stay until then); more are dropped (one always may wait). */
  readonly maxPendingBytes: number;
  /** Degraded but handled (a full disk, permissions): the worker goes on, the entry is a miss. */
  readonly onWarn: (message: string, details: Record<string, string | number>) => void;
  /** Counters changed in the background (a write ended, other workers' entries were found). */
  readonly onChange?: () => void;
  /** How often other workers' subfolders are listed again for their new entries (0 = only at start). */
  readonly refreshMs?: number;
}

/** A state file on disk (or on its way there), keyed by its scope and exact tokens. */
interface DiskEntry {
  /** SHA-256 of the cache scope (tenant): compared exactly, and the scope itself never reaches the disk. */
  readonly scope: string;
  readonly tokens: readonly Token[];
  readonly file: string;
  /** The whole file, trailer included; `stateBytes` of it are llama.cpp's. */
  readonly bytes: number;
  readonly stateBytes: number;
  sha256: string;
  /** Wall-clock ms of the last use (the file's mtime after a restart), for LRU. */
  lastUsed: number;
  /** In a subfolder this worker writes (and evicts); other workers' entries are only read. */
  readonly isOwn: boolean;
  /** Until written: true once the file is complete, false if writing failed. */
  written: Promise<boolean> | undefined;
  /** Until written: the host-memory state file it is copied from (deleted once written). */
  source: string | undefined;
}

/** Entries of other workers this worker indexes, per entry of its own share (a safeguard; each owner keeps its share). */
const foreignEntriesFactor = 2;
/** Files whose headers are read at once while scanning. */
const scanConcurrency = 8;

/**
 * The disk tier of saved prefixes: KV states that host memory evicted, kept in
 * `<dataDir>/prompt-cache` within a byte and entry budget (LRU), found again after a restart by
 * listing the folder. Every file is checked before llama.cpp reads it (model identity, context
 * format, length, SHA-256); a bad file is deleted and counted, never loaded. Every failure of the
 * file system is a miss and a rate-limited warning, never an exception to the caller. Only the
 * worker's message loop calls it.
 */
export class DiskPrefixCache {
  readonly #options: DiskPrefixCacheOptions;
  readonly #expect: EntryExpectation;
  readonly #ownDir: string;
  readonly #entries: DiskEntry[] = [];
  readonly #scopes = new LruMap<string, string>(1024);
  readonly #stats: DiskCacheStats;
  #writes: Promise<unknown> = Promise.resolve();
  #refreshing: Promise<void> | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #pendingBytes = 0;
  #temps = 0;
  #isClosed = false;

  private constructor(options: DiskPrefixCacheOptions) {
    this.#options = options;
    this.#expect = { model: options.model, format: options.format, maxTokens: options.maxTokens };
    this.#ownDir = writerFolder(options.dir, options.workerIndex);
    this.#stats = new DiskCacheStats(options.dir, options.onWarn);
  }

  /** Lists the folder (deleting bad and stale files) and returns the tier; never throws. */
  static async open(options: DiskPrefixCacheOptions): Promise<DiskPrefixCache> {
    const cache = new DiskPrefixCache(options);
    await cache.#scan(true);
    if ((options.refreshMs ?? 0) > 0) {
      cache.#refreshTimer = setInterval(() => void cache.refresh(), options.refreshMs);
      cache.#refreshTimer.unref();
    }
    return cache;
  }

  /** Where this worker writes its entries. */
  get directory(): string {
    return this.#ownDir;
  }

  /** Bytes of complete entries in the subfolders this worker writes. */
  get bytes(): number {
    return this.#ownUsage().bytes;
  }

  /** Bytes of host-memory state files taken by `spill` and not yet written (host memory still holds them). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** The entry sharing the most leading tokens with `prompt` in `scope`, if it shares more than `atLeast`. */
  find(prompt: readonly Token[], atLeast: number, scope: string): { tokens: readonly Token[]; shared: number } | undefined {
    const scopeHash = this.#scopeHash(scope);
    let best: DiskEntry | undefined;
    let bestShared = atLeast;
    for (const entry of this.#entries) {
      if (entry.scope !== scopeHash) continue;
      const shared = commonPrefix(entry.tokens, prompt);
      if (shared > bestShared) {
        best = entry;
        bestShared = shared;
      }
    }
    return best ? { tokens: best.tokens, shared: bestShared } : undefined;
  }

  /** Counts a request that looked for its prefix here: found (hit) or found nowhere (miss). */
  noteLookup(isHit: boolean): void {
    this.#stats.lookup(isHit);
  }

  /** Whether the entry for exactly this token array (as `spill` got it or `find` returned it) is kept. */
  holds(tokens: readonly Token[]): boolean {
    return this.#entries.some((e) => e.tokens === tokens);
  }

  /**
   * Takes over the state file `source` (a host-memory entry being evicted) and writes it to disk
   * in the background; `source` is deleted once written or refused. False when refused: over the
   * budget, too much waiting to be written (unless `isFlush`), or already on disk as it is or extended.
   */
  spill(tokens: readonly Token[], scope: string, source: string, stateBytes: number, options: { isFlush?: boolean } = {}): boolean {
    const scopeHash = this.#scopeHash(scope);
    const bytes = stateBytes + encodeTrailer({ model: this.#options.model, format: this.#options.format, scope: scopeHash, tokens: tokens.length, stateBytes, sha256: '0'.repeat(64) }).length;
    const isKept = this.#entries.some((e) => e.scope === scopeHash && isPrefixOf(tokens, e.tokens));
    // One state may always wait (it may be larger than the cap); a flush (shutdown) moves files that already count against host memory.
    const isOverPending = !options.isFlush && this.#pendingBytes > 0 && this.#pendingBytes + stateBytes > this.#options.maxPendingBytes;
    if (this.#isClosed || isKept || bytes > this.#options.maxBytes || isOverPending) {
      void unlink(source).catch(() => undefined);
      return false;
    }
    const file = path.join(this.#ownDir, `${this.#keyOf(scopeHash, tokens)}${entrySuffix}`);
    const entry: DiskEntry = { scope: scopeHash, tokens, file, bytes, stateBytes, sha256: '', lastUsed: Date.now(), isOwn: true, written: undefined, source };
    this.#pendingBytes += stateBytes;
    this.#entries.push(entry);
    const written = this.#writes.then(() => this.#write(entry, source));
    this.#writes = written;
    entry.written = written.finally(() => {
      this.#pendingBytes -= stateBytes;
      this.#stats.changed();
      this.#options.onChange?.();
    });
    return true;
  }

  /**
   * Loads the entry for exactly `tokens` into `sequence` after checking the file (or from host
   * memory, while it is being written); the entry stays on disk. False (a miss, the sequence left
   * empty) when the file is gone, bad or refused.
   */
  async restore(sequence: LlamaContextSequence, tokens: readonly Token[]): Promise<boolean> {
    const entry = this.#entries.find((e) => e.tokens === tokens);
    if (!entry) return false;
    const started = performance.now();
    if (entry.source) {
      const fromMemory = await this.#restoreUnwritten(sequence, entry, entry.source);
      if (fromMemory !== undefined) return fromMemory ? this.#stats.restored(started) : this.#stats.failedRestore();
    }
    if (entry.written && !(await entry.written)) return this.#stats.failedRestore();
    const reading = tempPath(this.#ownDir, 'read', ++this.#temps);
    let source = entry.file;
    try {
      // A hard link keeps the file whole while it is checked and loaded, even if its owner deletes it meanwhile.
      await mkdir(this.#ownDir, { recursive: true, mode: 0o700 });
      await link(entry.file, reading);
      source = reading;
    } catch (err) {
      if (codeOf(err) === 'ENOENT') {
        this.#forget(entry); // deleted by another worker (its budget) or by hand: a clean miss
        return this.#stats.failedRestore();
      }
      // No hard links here (some network file systems): read the file in place.
    }
    try {
      const verdict = await verifyEntryFile(source, entry.bytes, entry);
      if (verdict !== 'ok') return await this.#reject(entry, verdict);
      try {
        await sequence.loadStateFromFile(source, { acceptRisk: true });
      } catch {
        // A verified state llama.cpp still refuses does not fit this context: it is left as the KV cells were.
        await sequence.clearHistory();
        return await this.#reject(entry, 'format');
      }
      if (commonPrefix(sequence.contextTokens, entry.tokens) !== entry.tokens.length || sequence.contextTokens.length !== entry.tokens.length) {
        await sequence.clearHistory();
        return await this.#reject(entry, 'corrupt');
      }
      entry.lastUsed = Date.now();
      // The mtime carries the LRU order across restarts; a file deleted meanwhile needs nothing.
      void utimes(entry.file, new Date(), new Date()).catch(() => undefined);
      return this.#stats.restored(started);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') this.#forget(entry);
      else this.#stats.fsError('read', err);
      return this.#stats.failedRestore();
    } finally {
      if (source === reading) await unlink(reading).catch(() => undefined);
    }
  }

  /** Settles once every write queued so far has ended (written or failed). */
  async idle(): Promise<void> {
    await this.#writes;
  }

  /**
   * An entry still waiting for (or in) its write is loaded from its host-memory file, this
   * worker's own state saved moments ago: the request does not wait for the disk. Undefined when
   * the write finished meanwhile (the file on disk is read instead).
   */
  async #restoreUnwritten(sequence: LlamaContextSequence, entry: DiskEntry, source: string): Promise<boolean | undefined> {
    const reading = `${source}.read-${++this.#temps}`;
    try {
      await link(source, reading);
    } catch {
      return undefined;
    }
    try {
      await sequence.loadStateFromFile(reading, { acceptRisk: true });
      entry.lastUsed = Date.now();
      return true;
    } catch {
      await sequence.clearHistory();
      return false;
    } finally {
      await unlink(reading).catch(() => undefined);
    }
  }

  /** Lists other workers' subfolders again: their new entries become visible, deleted ones are forgotten. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#scan(false).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Gauges and what happened since the last call; undefined when nothing changed. Only one reader may call it. */
  takeReport(): DiskCacheReport | undefined {
    const usage = this.#ownUsage();
    return this.#stats.take({ bytes: usage.bytes, entries: usage.count });
  }

  /** Takes no more entries and waits (at most `timeoutMs`) for those being written. */
  async close(timeoutMs: number): Promise<void> {
    this.#isClosed = true;
    clearInterval(this.#refreshTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([this.#writes, this.#refreshing]), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Stops the refresh timer; what is on disk stays. */
  dispose(): void {
    this.#isClosed = true;
    clearInterval(this.#refreshTimer);
  }

  async #write(entry: DiskEntry, source: string): Promise<boolean> {
    const started = performance.now();
    const temp = tempPath(this.#ownDir, 'tmp', ++this.#temps);
    try {
      if (!this.#entries.includes(entry)) return false;
      await mkdir(this.#ownDir, { recursive: true, mode: 0o700 });
      await this.#makeRoom(entry.bytes);
      const written = await writeEntryFile(source, temp, { model: this.#options.model, format: this.#options.format, scope: entry.scope, tokens: entry.tokens.length });
      if (written.bytes !== entry.bytes) throw new Error(`the state file changed while it was copied (${written.stateBytes} of ${entry.stateBytes} bytes)`);
      await rename(temp, entry.file);
      entry.sha256 = written.sha256;
      entry.written = undefined;
      entry.source = undefined;
      // An entry this one extends is of no more use: a prompt shares at least as much with this one.
      for (const other of this.#entries.filter((e) => e !== entry && e.isOwn && !e.written && e.scope === entry.scope && isPrefixOf(e.tokens, entry.tokens))) await this.#delete(other);
      this.#stats.wrote(started);
      return true;
    } catch (err) {
      this.#stats.fsError('write', err);
      this.#forget(entry);
      await unlink(temp).catch(() => undefined);
      return false;
    } finally {
      entry.source = undefined;
      await unlink(source).catch(() => undefined);
    }
  }

  /** Deletes this worker's least recently used entries until `bytes` more fit its share. */
  async #makeRoom(bytes: number): Promise<void> {
    const usage = this.#ownUsage();
    while (usage.bytes + bytes > this.#options.maxBytes || usage.count + 1 > this.#options.maxEntries) {
      const victim = leastRecentlyUsed(this.#entries.filter((e) => e.isOwn && !e.written));
      if (!victim) throw new Error('no room in the disk prompt cache');
      usage.bytes -= victim.bytes;
      usage.count--;
      await this.#delete(victim);
    }
  }

  /**
   * Indexes the cache folder. At start (`isFirst`) every subfolder is read and this worker's own
   * are trimmed to its share; afterwards only other workers' subfolders are listed again.
   */
  async #scan(isFirst: boolean): Promise<void> {
    let dirs: string[];
    try {
      if (isFirst) await mkdir(this.#ownDir, { recursive: true, mode: 0o700 });
      dirs = (await readdir(this.#options.dir, { withFileTypes: true })).filter((d) => d.isDirectory() && isWriterFolder(d.name)).map((d) => d.name);
    } catch (err) {
      this.#stats.fsError('scan', err);
      return;
    }
    const { workers, workerIndex, maxEntries } = this.#options;
    const before = this.#entries.length;
    for (const name of dirs) {
      const isOwn = isOwnedBy(name, workerIndex, workers);
      // Own subfolders are indexed whole (then trimmed to the share); other workers' up to a safeguard.
      if (isFirst || !isOwn) await this.#scanDir(path.join(this.#options.dir, name), isOwn, isOwn ? Infinity : maxEntries * (foreignEntriesFactor * workers + 1));
    }
    if (isFirst) {
      const usage = this.#ownUsage();
      while (usage.bytes > this.#options.maxBytes || usage.count > maxEntries) {
        const victim = leastRecentlyUsed(this.#entries.filter((e) => e.isOwn && !e.written))!;
        usage.bytes -= victim.bytes;
        usage.count--;
        await this.#delete(victim);
      }
    }
    if (isFirst) this.#stats.changed();
    else if (this.#entries.length !== before) this.#options.onChange?.();
  }

  async #scanDir(dir: string, isOwn: boolean, maxIndexed: number): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') this.#stats.fsError('scan', err);
      return;
    }
    const listed = new Set(names);
    // Entries of this folder deleted since the last listing (by their owner's budget).
    for (const entry of this.#entries.filter((e) => !e.written && path.dirname(e.file) === dir && !listed.has(path.basename(e.file)))) this.#forget(entry);
    const known = new Set(this.#entries.filter((e) => path.dirname(e.file) === dir).map((e) => path.basename(e.file)));
    const fresh = names.filter((n) => n.endsWith(entrySuffix) && !known.has(n));
    if (isOwn) for (const name of names.filter(isTempName)) await removeStaleTemp(path.join(dir, name));
    for (let i = 0; i < fresh.length && this.#entries.length < maxIndexed; i += scanConcurrency) {
      await Promise.all(fresh.slice(i, i + scanConcurrency).map((name) => this.#index(path.join(dir, name), isOwn)));
    }
  }

  async #index(file: string, isOwn: boolean): Promise<void> {
    try {
      const header = await readEntryHeader(file, this.#expect);
      if (!header.isOk) {
        await this.#removeBad(file, header.reason);
        return;
      }
      const { trailer, tokens, bytes, mtimeMs } = header;
      this.#entries.push({ scope: trailer.scope, tokens, file, bytes, stateBytes: trailer.stateBytes, sha256: trailer.sha256, lastUsed: mtimeMs, isOwn, written: undefined, source: undefined });
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') this.#stats.fsError('scan', err);
    }
  }

  async #reject(entry: DiskEntry, reason: DiskCacheBadReason): Promise<boolean> {
    this.#forget(entry);
    await this.#removeBad(entry.file, reason);
    return this.#stats.failedRestore();
  }

  /** Deletes a bad file and counts it (once, whichever worker got there first). */
  async #removeBad(file: string, reason: DiskCacheBadReason): Promise<void> {
    try {
      await unlink(file);
      this.#stats.badFile(reason);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') this.#stats.fsError('scan', err);
    }
  }

  async #delete(entry: DiskEntry): Promise<void> {
    this.#forget(entry);
    await unlink(entry.file).catch(() => undefined);
  }

  #forget(entry: DiskEntry): void {
    const at = this.#entries.indexOf(entry);
    if (at !== -1) this.#entries.splice(at, 1);
    this.#stats.changed();
  }

  #ownUsage(): { bytes: number; count: number } {
    let bytes = 0;
    let count = 0;
    for (const e of this.#entries) {
      if (!e.isOwn || e.written) continue;
      bytes += e.bytes;
      count++;
    }
    return { bytes, count };
  }

  #scopeHash(scope: string): string {
    let hash = this.#scopes.get(scope);
    if (hash === undefined) {
      hash = createHash('sha256').update(scope).digest('hex');
      this.#scopes.set(scope, hash);
    }
    return hash;
  }

  /** File name of an entry: the same model, format, scope and tokens always give the same name. */
  #keyOf(scopeHash: string, tokens: readonly Token[]): string {
    return createHash('sha256')
      .update(`${this.#options.model}\0${this.#options.format}\0${scopeHash}\0`)
      .update(new Uint8Array(Uint32Array.from(tokens).buffer))
      .digest('hex')
      .slice(0, 40);
  }
}

function leastRecentlyUsed(entries: readonly DiskEntry[]): DiskEntry | undefined {
  let best: DiskEntry | undefined;
  for (const e of entries) if (!best || e.lastUsed < best.lastUsed) best = e;
  return best;
}

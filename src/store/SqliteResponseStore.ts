import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ResponseStore, StoredResponse } from '../core/ResponseStore.js';

/** Limits of the store (config `store`). */
export interface StoreLimits {
  readonly maxResponses: number;
  readonly maxAgeS: number;
  /** Total bytes of stored JSON (responses and their conversations); oldest pruned first. */
  readonly maxBytes: number;
}

/**
 * Stored responses in SQLite under the data folder. WAL mode: a response is durable once its
 * insert returns, so it survives a gateway crash (`kill -9`) after completion. Writes are small
 * and synchronous (well under a millisecond); old rows are pruned by age and count on insert.
 */
export class SqliteResponseStore implements ResponseStore {
  readonly #db: Database.Database;
  readonly #limits: StoreLimits;
  readonly #insert: Database.Statement;
  readonly #select: Database.Statement;
  readonly #remove: Database.Statement;
  readonly #insertItem: Database.Statement;
  readonly #selectItem: Database.Statement;
  readonly #removeItems: Database.Statement;
  readonly #pruneItems: Database.Statement;
  readonly #saveAll: (entry: StoredResponse) => void;
  readonly #count: Database.Statement;
  readonly #pruneAge: Database.Statement;
  readonly #pruneCount: Database.Statement;
  readonly #totalBytes: Database.Statement;
  readonly #oldest: Database.Statement;
  readonly #removeAny: Database.Statement;
  /** Bytes of stored JSON: kept as a running total, recounted whenever rows are pruned. */
  #bytes = 0;
  #inserts = 0;

  constructor(dataDir: string, limits: StoreLimits) {
    mkdirSync(dataDir, { recursive: true });
    this.#db = new Database(path.join(dataDir, 'responses.sqlite'));
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS responses (
      id TEXT PRIMARY KEY,
      created_at INTEGER NOT NULL,
      response TEXT NOT NULL,
      input_items TEXT NOT NULL,
      output_items TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS responses_created_at ON responses (created_at);
    CREATE TABLE IF NOT EXISTS output_items (
      id TEXT PRIMARY KEY,
      response_id TEXT NOT NULL,
      item TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS output_items_response ON output_items (response_id);`);
    // Stores written before responses had owners: their rows belong to the no-key tenant.
    const columns = this.#db.prepare('PRAGMA table_info(responses)').all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'owner')) this.#db.exec(`ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT 'anonymous'`);
    if (!columns.some((c) => c.name === 'bytes')) this.#db.exec(`ALTER TABLE responses ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0`);
    if (!columns.some((c) => c.name === 'session_key')) this.#db.exec(`ALTER TABLE responses ADD COLUMN session_key TEXT`);
    this.#limits = limits;
    this.#insert = this.#db.prepare('INSERT OR REPLACE INTO responses (id, owner, created_at, response, input_items, output_items, bytes, session_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.#select = this.#db.prepare('SELECT id, owner, created_at, response, input_items, output_items, session_key FROM responses WHERE id = ? AND owner = ? AND created_at >= ?');
    this.#remove = this.#db.prepare('DELETE FROM responses WHERE id = ? AND owner = ? RETURNING bytes');
    this.#insertItem = this.#db.prepare('INSERT OR REPLACE INTO output_items (id, response_id, item) VALUES (?, ?, ?)');
    this.#selectItem = this.#db.prepare('SELECT o.item FROM output_items o JOIN responses r ON r.id = o.response_id WHERE o.id = ? AND r.owner = ? AND r.created_at >= ?');
    this.#removeItems = this.#db.prepare('DELETE FROM output_items WHERE response_id = ?');
    this.#pruneItems = this.#db.prepare('DELETE FROM output_items WHERE response_id NOT IN (SELECT id FROM responses)');
    this.#saveAll = this.#db.transaction((entry: StoredResponse) => {
      const response = JSON.stringify(entry.response);
      const inputItems = JSON.stringify(entry.inputItems);
      const outputItems = JSON.stringify(entry.outputItems);
      const bytes = response.length + inputItems.length + outputItems.length;
      this.#insert.run(entry.id, entry.owner, entry.createdAtS, response, inputItems, outputItems, bytes, entry.sessionKey ?? null);
      this.#bytes += bytes;
      for (const item of entry.outputItems) if (typeof item.id === 'string') this.#insertItem.run(item.id, entry.id, JSON.stringify(item));
    });
    this.#count = this.#db.prepare('SELECT COUNT(*) AS n FROM responses');
    this.#pruneAge = this.#db.prepare('DELETE FROM responses WHERE created_at < ?');
    this.#totalBytes = this.#db.prepare('SELECT COALESCE(SUM(bytes), 0) AS n FROM responses');
    this.#oldest = this.#db.prepare('SELECT id, bytes FROM responses ORDER BY created_at ASC, rowid ASC LIMIT 64');
    this.#removeAny = this.#db.prepare('DELETE FROM responses WHERE id = ?');
    this.#pruneCount = this.#db.prepare('DELETE FROM responses WHERE id IN (SELECT id FROM responses ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)');
    this.#prune();
  }

  save(entry: StoredResponse): void {
    this.#saveAll(entry);
    if (this.#bytes > this.#limits.maxBytes) this.#pruneBytes();
    // Pruning scans an index; doing it every 64 inserts keeps the store within limits + 64.
    if (++this.#inserts % 64 === 0) this.#prune();
  }

  get(id: string, owner: string): StoredResponse | undefined {
    const row = this.#select.get(id, owner, this.#oldestAllowed()) as
      | { id: string; owner: string; created_at: number; response: string; input_items: string; output_items: string; session_key: string | null }
      | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      owner: row.owner,
      createdAtS: row.created_at,
      response: JSON.parse(row.response) as Record<string, unknown>,
      inputItems: JSON.parse(row.input_items) as Array<Record<string, unknown>>,
      outputItems: JSON.parse(row.output_items) as Array<Record<string, unknown>>,
      sessionKey: row.session_key ?? undefined,
    };
  }

  findItem(id: string, owner: string): Record<string, unknown> | undefined {
    const row = this.#selectItem.get(id, owner, this.#oldestAllowed()) as { item: string } | undefined;
    return row ? (JSON.parse(row.item) as Record<string, unknown>) : undefined;
  }

  delete(id: string, owner: string): boolean {
    const removed = this.#remove.get(id, owner) as { bytes: number } | undefined;
    if (!removed) return false;
    this.#bytes -= removed.bytes;
    this.#removeItems.run(id);
    return true;
  }

  count(): number {
    return (this.#count.get() as { n: number }).n;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #prune(): void {
    this.#pruneAge.run(this.#oldestAllowed());
    this.#pruneCount.run(this.#limits.maxResponses);
    this.#bytes = (this.#totalBytes.get() as { n: number }).n;
    this.#pruneBytes();
    this.#pruneItems.run();
  }

  /** Drops the oldest responses until the stored JSON fits `maxBytes`. */
  #pruneBytes(): void {
    while (this.#bytes > this.#limits.maxBytes) {
      const oldest = this.#oldest.all() as Array<{ id: string; bytes: number }>;
      if (oldest.length === 0) return;
      for (const row of oldest) {
        if (this.#bytes <= this.#limits.maxBytes) return;
        this.#removeAny.run(row.id);
        this.#removeItems.run(row.id);
        this.#bytes -= row.bytes;
      }
    }
  }

  #oldestAllowed(): number {
    return Math.floor(Date.now() / 1000) - this.#limits.maxAgeS;
  }
}

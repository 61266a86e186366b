import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ResponseStore, StoredResponse } from '../core/ResponseStore.js';

/** Limits of the store (config `store`). */
export interface StoreLimits {
  readonly maxResponses: number;
  readonly maxAgeS: number;
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
  readonly #count: Database.Statement;
  readonly #pruneAge: Database.Statement;
  readonly #pruneCount: Database.Statement;
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
    CREATE INDEX IF NOT EXISTS responses_created_at ON responses (created_at);`);
    this.#limits = limits;
    this.#insert = this.#db.prepare('INSERT OR REPLACE INTO responses (id, created_at, response, input_items, output_items) VALUES (?, ?, ?, ?, ?)');
    this.#select = this.#db.prepare('SELECT id, created_at, response, input_items, output_items FROM responses WHERE id = ? AND created_at >= ?');
    this.#remove = this.#db.prepare('DELETE FROM responses WHERE id = ?');
    this.#count = this.#db.prepare('SELECT COUNT(*) AS n FROM responses');
    this.#pruneAge = this.#db.prepare('DELETE FROM responses WHERE created_at < ?');
    this.#pruneCount = this.#db.prepare('DELETE FROM responses WHERE id IN (SELECT id FROM responses ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)');
    this.#prune();
  }

  save(entry: StoredResponse): void {
    this.#insert.run(entry.id, entry.createdAtS, JSON.stringify(entry.response), JSON.stringify(entry.inputItems), JSON.stringify(entry.outputItems));
    // Pruning scans an index; doing it every 64 inserts keeps the store within limits + 64.
    if (++this.#inserts % 64 === 0) this.#prune();
  }

  get(id: string): StoredResponse | undefined {
    const row = this.#select.get(id, this.#oldestAllowed()) as
      | { id: string; created_at: number; response: string; input_items: string; output_items: string }
      | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      createdAtS: row.created_at,
      response: JSON.parse(row.response) as Record<string, unknown>,
      inputItems: JSON.parse(row.input_items) as Array<Record<string, unknown>>,
      outputItems: JSON.parse(row.output_items) as Array<Record<string, unknown>>,
    };
  }

  delete(id: string): boolean {
    return this.#remove.run(id).changes > 0;
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
  }

  #oldestAllowed(): number {
    return Math.floor(Date.now() / 1000) - this.#limits.maxAgeS;
  }
}

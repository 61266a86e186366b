/** Why a file of the disk prompt cache was deleted without being loaded. */
export type DiskCacheBadReason = 'corrupt' | 'truncated' | 'model' | 'format';

/**
 * The disk prompt cache of one worker, as it reports it to the gateway (IPC) and the gateway turns
 * it into metrics: its gauges now, and what happened since the previous report.
 */
export interface DiskCacheReport {
  /** Bytes and entries of the cache folders this worker writes. */
  readonly bytes: number;
  readonly entries: number;
  /** Requests with a prefix worth restoring that the memory tier could not serve: found on disk (hit) or nowhere (miss). */
  readonly hits: number;
  readonly misses: number;
  /** States loaded from disk into a slot, and loads that failed (file gone, bad, refused). */
  readonly restores: number;
  readonly failedRestores: number;
  /** Seconds per entry written (copy, hash, rename) and per restore (verify and load); at most a few hundred per report. */
  readonly writeSeconds: readonly number[];
  readonly readSeconds: readonly number[];
  /** Files deleted as bad, by reason. */
  readonly badFiles: Readonly<Partial<Record<DiskCacheBadReason, number>>>;
  /** File-system failures (full disk, permissions, missing folder), by what was being done; each degraded to a miss. */
  readonly errors: Readonly<Partial<Record<'scan' | 'write' | 'read', number>>>;
}

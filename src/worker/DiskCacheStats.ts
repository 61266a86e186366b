import type { DiskCacheBadReason, DiskCacheReport } from '../ipc/messages.js';

/** The same warning (by what failed and its code) at most this often per worker. */
const warnEveryMs = 60_000;
/** Most timing samples kept between two reports. */
const maxSamples = 256;

/** The report's counts while they are gathered. */
interface Counts {
  hits: number;
  misses: number;
  restores: number;
  failedRestores: number;
  writeSeconds: number[];
  readSeconds: number[];
  badFiles: Partial<Record<DiskCacheBadReason, number>>;
  errors: Partial<Record<'scan' | 'write' | 'read', number>>;
}

/**
 * What the disk tier did since the last report (counts and timings for the gateway's metrics),
 * and its warnings, rate-limited per kind of failure. Only the worker's message loop calls it.
 */
export class DiskCacheStats {
  readonly #onWarn: (message: string, details: Record<string, string | number>) => void;
  readonly #dir: string;
  readonly #warnedAt = new Map<string, number>();
  #counts = emptyCounts();
  #isDirty = true;

  constructor(dir: string, onWarn: (message: string, details: Record<string, string | number>) => void) {
    this.#dir = dir;
    this.#onWarn = onWarn;
  }

  lookup(isHit: boolean): void {
    if (isHit) this.#counts.hits++;
    else this.#counts.misses++;
    this.changed();
  }

  restored(startedAt: number): true {
    this.#counts.restores++;
    this.#sample(this.#counts.readSeconds, startedAt);
    return true;
  }

  failedRestore(): false {
    this.#counts.failedRestores++;
    this.changed();
    return false;
  }

  wrote(startedAt: number): void {
    this.#sample(this.#counts.writeSeconds, startedAt);
  }

  badFile(reason: DiskCacheBadReason): void {
    this.#counts.badFiles[reason] = (this.#counts.badFiles[reason] ?? 0) + 1;
    this.changed();
  }

  /** A file-system failure: counted, and a warning unless the same one was given within a minute. */
  fsError(kind: 'scan' | 'write' | 'read', err: unknown): void {
    this.#counts.errors[kind] = (this.#counts.errors[kind] ?? 0) + 1;
    this.changed();
    const code = codeOf(err) ?? 'error';
    const key = `${kind}:${code}`;
    const last = this.#warnedAt.get(key);
    if (last !== undefined && Date.now() - last < warnEveryMs) return;
    this.#warnedAt.set(key, Date.now());
    this.#onWarn(`disk prompt cache: ${kind} failed; treated as a miss`, { kind, code, dir: this.#dir, detail: (err as Error)?.message ?? String(err) });
  }

  /** The gauges changed (entries came or went). */
  changed(): void {
    this.#isDirty = true;
  }

  /** Everything since the last call, with the gauges now; undefined when nothing changed. */
  take(gauges: { bytes: number; entries: number }): DiskCacheReport | undefined {
    if (!this.#isDirty) return undefined;
    const report: DiskCacheReport = { ...this.#counts, ...gauges };
    this.#counts = emptyCounts();
    this.#isDirty = false;
    return report;
  }

  #sample(samples: number[], startedAt: number): void {
    if (samples.length < maxSamples) samples.push((performance.now() - startedAt) / 1000);
    this.changed();
  }
}

/** The `code` of a Node.js system error (ENOENT, ENOSPC, EACCES...). */
export function codeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function emptyCounts(): Counts {
  return { hits: 0, misses: 0, restores: 0, failedRestores: 0, writeSeconds: [], readSeconds: [], badFiles: {}, errors: {} };
}

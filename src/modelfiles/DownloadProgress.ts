/** Where and how a download reports its progress. */
export interface DownloadProgressOptions {
  /** A terminal gets one redrawn bar; anything else (a log, CI) plain lines every `intervalMs`. */
  readonly isTty: boolean;
  readonly write: (text: string) => void;
  readonly intervalMs: number;
  /** Terminal width for the bar (default 80). */
  readonly columns?: number;
  readonly now?: () => number;
}

const speedWindowMs = 5_000;
const redrawMs = 100;

/**
 * Progress of one download (all parts of a split model together): bytes, speed over the last few
 * seconds and the time left. Bytes already on disk when a download resumes count as done but not
 * toward the speed.
 */
export class DownloadProgress {
  readonly #options: DownloadProgressOptions;
  readonly #now: () => number;
  readonly #label: string;
  #samples: Array<{ at: number; bytes: number }> = [];
  #lastDrawAt = -Infinity;
  #hasBar = false;
  #done = 0;
  #total = 0;
  #drewComplete = false;

  constructor(label: string, options: DownloadProgressOptions) {
    this.#label = label;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Records progress; draws when due. */
  update(doneBytes: number, totalBytes: number): void {
    const at = this.#now();
    this.#done = doneBytes;
    this.#total = totalBytes;
    this.#samples.push({ at, bytes: doneBytes });
    while (this.#samples.length > 2 && at - this.#samples[1].at > speedWindowMs) this.#samples.shift();
    const due = this.#options.isTty ? redrawMs : this.#options.intervalMs;
    const isComplete = totalBytes > 0 && doneBytes >= totalBytes;
    if (isComplete ? this.#drewComplete : at - this.#lastDrawAt < due) return;
    this.#drewComplete = isComplete;
    this.#lastDrawAt = at;
    this.#draw();
  }

  /** Bytes per second over the last few seconds (0 until there are two samples). */
  get bytesPerSecond(): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.at - first.at <= 0) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }

  /** Prints a message on its own line (below the bar on a terminal). */
  message(text: string): void {
    this.#clearBar();
    this.#options.write(`${text}\n`);
  }

  /** Ends the bar's line. */
  finish(): void {
    if (this.#total > 0 && !this.#drewComplete && this.#done > 0) this.#draw();
    if (this.#hasBar) this.#options.write('\n');
    this.#hasBar = false;
  }

  #draw(): void {
    const done = this.#done;
    const total = this.#total;
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    const speed = this.bytesPerSecond;
    const eta = speed > 0 && total > done ? formatDuration((total - done) / speed) : total > 0 && done >= total ? '0s' : '--';
    const stats = `${(ratio * 100).toFixed(1).padStart(5)}%  ${formatBytes(done)} / ${formatBytes(total)}  ${formatBytes(speed)}/s  ETA ${eta}`;
    if (!this.#options.isTty) {
      this.#options.write(`${this.#label}: ${stats.trim()}\n`);
      return;
    }
    const columns = this.#options.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - stats.length - this.#label.length - 6));
    const filled = Math.round(ratio * width);
    const label = this.#label.length > 40 ? `${this.#label.slice(0, 39)}…` : this.#label;
    this.#options.write(`\r\x1b[K${label} [${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}] ${stats}`);
    this.#hasBar = true;
  }

  #clearBar(): void {
    if (!this.#hasBar) return;
    this.#options.write('\r\x1b[K');
    this.#hasBar = false;
  }
}

/** 1234567 → "1.2 MB" (decimal units, as the hub shows sizes). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Seconds → "42s", "3m07s", "1h02m". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

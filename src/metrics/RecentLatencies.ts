import type { RequestObserver } from '../core/RequestObserver.js';

/** Percentiles of recent samples, in milliseconds. */
export interface LatencyPercentiles {
  readonly n: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
}

/** The last `capacity` samples of one latency, for percentiles over recent traffic (the status view). */
export class LatencyRing {
  readonly #samples: Float64Array;
  #count = 0;
  #next = 0;

  constructor(capacity: number) {
    this.#samples = new Float64Array(capacity);
  }

  add(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#samples.length;
    this.#count = Math.min(this.#count + 1, this.#samples.length);
  }

  percentiles(): LatencyPercentiles {
    const sorted = Array.from(this.#samples.subarray(0, this.#count)).sort((a, b) => a - b);
    const at = (p: number) => (sorted.length === 0 ? null : round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]));
    return { n: sorted.length, p50: at(50), p90: at(90), p99: at(99) };
  }
}

/** Time to first token and inter-token latency of the last requests (512 of each). */
export class RecentLatencies implements RequestObserver {
  readonly ttft = new LatencyRing(512);
  readonly interToken = new LatencyRing(512);

  onRequestFinished(summary: Parameters<RequestObserver['onRequestFinished']>[0]): void {
    if (summary.timeToFirstTokenS !== undefined) this.ttft.add(summary.timeToFirstTokenS * 1000);
    const generated = summary.usage?.completionTokens ?? 0;
    if (summary.timings && generated > 1) this.interToken.add(summary.timings.decodeMs / (generated - 1));
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

import { toCacheScope } from '../core/GenerationRun.js';
import type { ModelInfo } from '../core/types.js';
import type { GatewayState, StatusSource } from '../core/status.js';
import type { Metrics } from './metrics.js';
import type { RecentLatencies } from './RecentLatencies.js';

/** What the status report reads besides the metrics. */
export interface StatusReportOptions {
  readonly gateway: () => GatewayState;
  readonly model: () => ModelInfo | undefined;
  readonly latencies: RecentLatencies;
  readonly cacheScope: 'key' | 'shared';
  readonly savedPrefixLimitBytes: number;
  readonly startedAt: number;
}

/** Sum of a metric's values, grouped by one label (or in all). */
async function sumBy(metric: { get(): Promise<{ values: Array<{ value: number; labels: Partial<Record<string, string | number>> }> }> }, label?: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    const key = label === undefined ? 'all' : String(v.labels[label] ?? '');
    out[key] = (out[key] ?? 0) + v.value;
  }
  return out;
}

/**
 * What the console's live view shows (`GET /v1/flint/status`), for one tenant. Slots with what
 * they hold and whether a session is pinned to them (the caller's own session by name; another
 * key's only as "other"), the queue, saved prefixes, WebSocket sessions, prompt-cache results by
 * reason, and latency percentiles of recent requests.
 */
export function createStatusReport(metrics: Metrics, options: StatusReportOptions): StatusSource {
  const { latencies } = options;
  const status = async (tenant: string): Promise<Record<string, unknown>> => {
    const ownScope = `${toCacheScope(options.cacheScope, tenant)}:`;
    const { slots, queueDepth, queueLimit } = options.gateway();
    const model = options.model();
    const workers = new Map<number, Array<Record<string, unknown>>>();
    for (const s of slots) {
      const pinned = s.cacheKey === undefined ? 'none' : s.cacheKey.startsWith(ownScope) ? 'yours' : 'other';
      const entry: Record<string, unknown> = { slot: s.slot, busy: s.isBusy, heldTokens: s.heldTokens, pinned };
      if (pinned === 'yours') entry.session = s.cacheKey!.slice(ownScope.length);
      workers.set(s.worker, [...(workers.get(s.worker) ?? []), entry]);
    }
    const saved = await sumBy(metrics.savedPrefixBytes, 'worker');
    const cache = (await metrics.promptCache.get()).values;
    const hits = cache.filter((v) => v.labels.result === 'hit').reduce((a, v) => a + v.value, 0);
    const misses = cache.filter((v) => v.labels.result === 'miss').reduce((a, v) => a + v.value, 0);
    const byReason = (result: string) => Object.fromEntries(cache.filter((v) => v.labels.result === result).map((v) => [String(v.labels.reason), v.value]));
    const promptTokens = (await sumBy(metrics.promptTokens)).all ?? 0;
    const cachedTokens = (await sumBy(metrics.cachedPromptTokens)).all ?? 0;
    return {
      object: 'flint.status',
      model: model ? { id: model.id, contextSize: model.contextSize, architecture: model.architecture } : null,
      uptimeS: Math.round((Date.now() - options.startedAt) / 1000),
      workers: [...workers.entries()].map(([index, workerSlots]) => ({ index, savedPrefixBytes: saved[String(index)] ?? 0, slots: workerSlots })),
      queue: { depth: queueDepth, limit: queueLimit },
      savedPrefixes: { bytes: Object.values(saved).reduce((a, b) => a + b, 0), limitBytesPerWorker: options.savedPrefixLimitBytes },
      sessions: {
        open: (await sumBy(metrics.wsSessionsOpen)).all ?? 0,
        resumable: (await sumBy(metrics.wsResumableSessions)).all ?? 0,
      },
      cache: {
        hits,
        misses,
        hitRate: hits + misses === 0 ? null : hits / (hits + misses),
        hitsByReason: byReason('hit'),
        missesByReason: byReason('miss'),
        promptTokens,
        cachedTokens,
        cachedTokenShare: promptTokens === 0 ? null : cachedTokens / promptTokens,
      },
      latency: { ttftMs: latencies.ttft.percentiles(), interTokenMs: latencies.interToken.percentiles() },
    };
  };
  return { status };
}

import type { DiskCacheReport } from '../core/diskCache.js';
import type { PromptRender } from '../core/types.js';
import type { RequestObserver } from '../core/RequestObserver.js';
import type { MemberObserver } from '../core/members.js';
import type { Metrics } from './metrics.js';

/**
 * Turns what the parts report into metric updates, so the parts never see prom-client and the
 * composition root only wires them. Each observer's shape matches the interface its part
 * declares (Scheduler's SchedulerObserver, the WebSocket SessionObserver, RequestObserver).
 */

/** Request summaries from every transport. */
export function createRequestObserver(metrics: Metrics): RequestObserver {
  return {
    onRequestFinished: (s) => {
      metrics.requests.inc({ api: s.api, status: String(s.status), outcome: s.outcome });
      metrics.requestDuration.observe({ api: s.api }, s.durationS);
      if (s.timeToFirstTokenS !== undefined) metrics.timeToFirstToken.observe({ api: s.api }, s.timeToFirstTokenS);
      if (s.usage) {
        metrics.promptTokens.inc(s.usage.promptTokens);
        metrics.cachedPromptTokens.inc(s.usage.cachedTokens);
        metrics.generatedTokens.inc(s.usage.completionTokens);
        metrics.promptTokensPerRequest.observe(s.usage.promptTokens);
        if (s.usage.acceptedPredictionTokens !== undefined) metrics.predictedTokens.inc({ result: 'accepted' }, s.usage.acceptedPredictionTokens);
        if (s.usage.rejectedPredictionTokens !== undefined) metrics.predictedTokens.inc({ result: 'rejected' }, s.usage.rejectedPredictionTokens);
      }
      if (s.timings) {
        metrics.prefill.observe(s.timings.prefillMs / 1000);
        metrics.decode.observe(s.timings.decodeMs / 1000);
        if (s.usage && s.usage.completionTokens > 1) metrics.interTokenLatency.observe({ api: s.api }, s.timings.decodeMs / 1000 / (s.usage.completionTokens - 1));
      }
    },
  };
}

/** Queue, slots, routing and prompt-cache results from the scheduler. */
export function createSchedulerObserver(metrics: Metrics) {
  return {
    onQueueChange: (depth: number) => metrics.queueDepth.set(depth),
    onQueueWait: (seconds: number) => metrics.queueWait.observe(seconds),
    onSlotsChange: (byWorker: ReadonlyMap<number, { busy: number; total: number }>) => {
      metrics.slotsBusy.reset();
      metrics.slotsTotal.reset();
      for (const [worker, { busy, total }] of byWorker) {
        metrics.slotsBusy.set({ worker: String(worker) }, busy);
        metrics.slotsTotal.set({ worker: String(worker) }, total);
      }
    },
    onRoute: (route: string) => metrics.routes.inc({ route }),
    onAffinityBreak: (cause: string) => metrics.affinityBreaks.inc({ cause }),
    onPromptCache: (route: string, cachedTokens: number, restoredTokens: number, copiedTokens: number) => {
      metrics.restoredPromptTokens.inc(restoredTokens);
      metrics.copiedPromptTokens.inc(copiedTokens);
      if (restoredTokens > 0) metrics.promptCache.inc({ result: 'hit', reason: 'saved_prefix' });
      else if (copiedTokens > 0) metrics.promptCache.inc({ result: 'hit', reason: 'slot_copy' });
      else if (cachedTokens > 0) metrics.promptCache.inc({ result: 'hit', reason: route === 'affinity' ? 'affinity' : 'slot_prefix' });
      else metrics.promptCache.inc({ result: 'miss', reason: route === 'cold' || route === 'hash' || route === 'tenant' ? 'no_prefix' : route === 'saved' ? 'evicted' : 'diverged' });
    },
    onPromptRender: (render: PromptRender) => {
      metrics.promptRenders.inc({ kind: render.mode, reason: render.reason ?? '' });
      metrics.promptRenderSeconds.observe({ kind: render.mode }, render.ms / 1000);
    },
    onChatMessages: (sent: number, kept: number) => {
      metrics.chatMessages.inc({ kind: 'sent' }, sent);
      metrics.chatMessages.inc({ kind: 'kept' }, kept);
    },
    onEvictionSave: (kind: 'idle' | 'critical') => metrics.evictionSaves.inc({ kind }),
    onSavedPrefixBytes: (worker: number, bytes: number) => metrics.savedPrefixBytes.set({ worker: String(worker) }, bytes),
    onStreamOverflow: () => metrics.streamOverflows.inc(),
    onRetry: () => metrics.upstreamRetries.inc(),
    onMigration: (outcome: 'ok' | 'failed') => metrics.upstreamMigrations.inc({ outcome }),
  };
}

/** Sessions kept between sockets (ResumableSessions). */
export function createResumableObserver(metrics: Metrics) {
  return {
    onKept: (sessions: number, bytes: number) => {
      metrics.wsResumableSessions.set(sessions);
      metrics.wsResumableBytes.set(bytes);
    },
    onResumed: () => metrics.wsResumes.inc({ result: 'resumed' }),
    onDropped: (reason: 'expired' | 'evicted') => metrics.wsResumes.inc({ result: reason }),
  };
}

/** WebSocket sessions: open count, turns per session, per-turn time to first token. */
export function createSessionObserver(metrics: Metrics) {
  return {
    onSessionOpen: () => {
      metrics.wsSessionsOpen.inc();
      metrics.wsSessions.inc();
    },
    onSessionClose: (turns: number) => {
      metrics.wsSessionsOpen.dec();
      metrics.wsTurnsPerSession.observe(turns);
    },
    onTurnFirstToken: (seconds: number) => metrics.wsTurnTimeToFirstToken.observe(seconds),
  };
}


/** Reports of each worker's disk prompt cache. */
export function createDiskCacheObserver(metrics: Metrics) {
  return {
    onDiskCacheReport: (worker: number, report: DiskCacheReport) => {
      metrics.diskCacheBytes.set({ worker: String(worker) }, report.bytes);
      metrics.diskCacheEntries.set({ worker: String(worker) }, report.entries);
      metrics.diskCacheLookups.inc({ result: 'hit' }, report.hits);
      metrics.diskCacheLookups.inc({ result: 'miss' }, report.misses);
      metrics.diskCacheRestores.inc({ result: 'ok' }, report.restores);
      metrics.diskCacheRestores.inc({ result: 'failed' }, report.failedRestores);
      for (const seconds of report.writeSeconds) metrics.diskCacheWriteSeconds.observe(seconds);
      for (const seconds of report.readSeconds) metrics.diskCacheReadSeconds.observe(seconds);
      for (const [reason, n] of Object.entries(report.badFiles)) metrics.diskCacheBadFiles.inc({ reason }, n ?? 0);
      for (const [kind, n] of Object.entries(report.errors)) metrics.diskCacheErrors.inc({ kind }, n ?? 0);
    },
  };
}

/** Per-member request outcomes and time to first output of remote engines (config `upstreams`). */
export function createMemberObserver(metrics: Metrics): Required<MemberObserver> {
  return {
    onRequest: (member, outcome, firstOutputS) => {
      metrics.upstreamRequests.inc({ member, outcome });
      if (firstOutputS !== undefined) metrics.upstreamTimeToFirstToken.observe({ member }, firstOutputS);
    },
    onLoad: (member, load) => {
      metrics.upstreamLoad.set({ member, figure: 'busy_slots' }, load.busySlots);
      metrics.upstreamLoad.set({ member, figure: 'total_slots' }, load.totalSlots);
      metrics.upstreamLoad.set({ member, figure: 'waiting' }, load.waiting);
      if (load.kvUsage !== undefined) metrics.upstreamLoad.set({ member, figure: 'kv_usage' }, load.kvUsage);
    },
  };
}

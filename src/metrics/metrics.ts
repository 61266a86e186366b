import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency buckets from half a millisecond to a minute. */
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const tokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144];

/** Values read at scrape time. */
export interface MetricSources {
  readonly storedResponses?: () => number;
  /** Requests waiting and running, and the share of KV cells in use: what load-aware routers read. */
  readonly load?: () => Load;
  /** Also export the load under vLLM's names (`vllm:num_requests_waiting`, ...), for routers that read only those. */
  readonly vllmAliases?: boolean;
}

/** A replica's load as routers read it. */
export interface Load {
  readonly waiting: number;
  readonly running: number;
  /** Tokens held by all slots over their capacity, 0 to 1. */
  readonly kvUsage: number;
}

/** Gauges of the load, set from `read` at scrape time, under `names`. */
function loadGauges(r: Registry[], read: (() => Load) | undefined, names: { waiting: string; running: string; kvUsage: string }, note = ''): Gauge[] {
  const gauge = (name: string, help: string, pick: (l: Load) => number) =>
    new Gauge({
      name,
      help: help + note,
      registers: r,
      collect() {
        if (read) this.set(pick(read()));
      },
    });
  return [
    gauge(names.waiting, 'Requests waiting for a slot.', (l) => l.waiting),
    gauge(names.running, 'Requests holding a slot (generating or evaluating their prompt).', (l) => l.running),
    gauge(names.kvUsage, 'Share of KV cache cells in use: tokens held by all slots over their capacity (0 to 1).', (l) => l.kvUsage),
  ];
}

/** Every instrument Flint exports, on its own Registry (never prom-client's global one). */
export function createMetrics(sources: MetricSources = {}) {
  const registry = new Registry();
  // The event-loop lag monitor samples on a libuv timer: every 10 ms by default, most of an idle gateway's CPU; 100 ms still shows stalls.
  collectDefaultMetrics({ register: registry, prefix: 'flint_', eventLoopMonitoringPrecision: 100 });
  const r = [registry];
  return {
    registry,
    requests: new Counter({ name: 'flint_requests_total', help: 'Finished API requests by api, status and outcome.', labelNames: ['api', 'status', 'outcome'] as const, registers: r }),
    requestDuration: new Histogram({ name: 'flint_request_duration_seconds', help: 'Time from request to last byte.', labelNames: ['api'] as const, buckets: latencyBuckets, registers: r }),
    timeToFirstToken: new Histogram({ name: 'flint_time_to_first_token_seconds', help: 'Time from request to the first generated text.', labelNames: ['api'] as const, buckets: latencyBuckets, registers: r }),
    interTokenLatency: new Histogram({ name: 'flint_inter_token_latency_seconds', help: 'Mean time per generated token after the first, per request.', labelNames: ['api'] as const, buckets: latencyBuckets, registers: r }),
    queueWait: new Histogram({ name: 'flint_queue_wait_seconds', help: 'Time a request waited for a slot.', buckets: latencyBuckets, registers: r }),
    prefill: new Histogram({ name: 'flint_prefill_seconds', help: 'Prompt evaluation time (engine side), first token included.', buckets: latencyBuckets, registers: r }),
    decode: new Histogram({ name: 'flint_decode_seconds', help: 'Decoding time per request after the first token (engine side).', buckets: latencyBuckets, registers: r }),
    promptTokens: new Counter({ name: 'flint_prompt_tokens_total', help: 'Prompt tokens received.', registers: r }),
    cachedPromptTokens: new Counter({ name: 'flint_prompt_tokens_cached_total', help: 'Prompt tokens served from the KV cache.', registers: r }),
    generatedTokens: new Counter({ name: 'flint_generated_tokens_total', help: 'Tokens generated.', registers: r }),
    promptTokensPerRequest: new Histogram({ name: 'flint_prompt_tokens', help: 'Prompt tokens per request.', buckets: tokenBuckets, registers: r }),
    queueDepth: new Gauge({ name: 'flint_queue_depth', help: 'Requests waiting for a slot.', registers: r }),
    queueLimit: new Gauge({ name: 'flint_queue_limit', help: 'Configured maximum queue length.', registers: r }),
    slotsBusy: new Gauge({ name: 'flint_slots_busy', help: 'Slots generating right now, per worker.', labelNames: ['worker'] as const, registers: r }),
    slotsTotal: new Gauge({ name: 'flint_slots_total', help: 'Slots on live workers, per worker.', labelNames: ['worker'] as const, registers: r }),
    workersUp: new Gauge({ name: 'flint_workers_up', help: 'Worker processes with a loaded model.', registers: r }),
    workerUp: new Gauge({ name: 'flint_worker_up', help: '1 while the worker is up, 0 while it is down or restarting.', labelNames: ['worker'] as const, registers: r }),
    modelInfo: new Gauge({ name: 'flint_model_info', help: 'The served model (value 1).', labelNames: ['model', 'architecture', 'context_size'] as const, registers: r }),
    workerRestarts: new Counter({ name: 'flint_worker_restarts_total', help: 'Worker processes restarted after dying.', registers: r }),
    upstreamUp: new Gauge({ name: 'flint_upstream_up', help: 'Remote engines (config upstreams): 1 while the member passes its readiness probe and serves, 0 while it is out of the pool.', labelNames: ['member', 'kind'] as const, registers: r }),
    upstreamDowns: new Counter({ name: 'flint_upstream_down_total', help: 'Times a remote engine left the pool (a failed probe or request).', labelNames: ['member'] as const, registers: r }),
    upstreamRequests: new Counter({ name: 'flint_upstream_requests_total', help: 'Requests sent to each remote engine, by how they ended: ok, cancelled, unavailable (retried elsewhere when nothing was sent), rejected (4xx), failed.', labelNames: ['member', 'outcome'] as const, registers: r }),
    upstreamTimeToFirstToken: new Histogram({ name: 'flint_upstream_time_to_first_token_seconds', help: 'Time from sending a request to a remote engine to its first output, per member.', labelNames: ['member'] as const, buckets: latencyBuckets, registers: r }),
    upstreamLoad: new Gauge({ name: 'flint_upstream_load', help: "A member's own slots and queue as the front's last probe read them (Flint, llama-server and vLLM export them): busy_slots, total_slots, waiting, kv_usage.", labelNames: ['member', 'figure'] as const, registers: r }),
    upstreamRetries: new Counter({ name: 'flint_upstream_retries_total', help: 'Requests tried again on another member after theirs failed before any output.', registers: r }),
    upstreamMigrations: new Counter({ name: 'flint_upstream_migrations_total', help: 'Chat answers cut mid-stream by their member that went on on another member: ok (finished there) or failed (the other failed too).', labelNames: ['outcome'] as const, registers: r }),
    promptCache: new Counter({ name: 'flint_prompt_cache_requests_total', help: 'Requests by prompt-cache result (hit/miss) and reason.', labelNames: ['result', 'reason'] as const, registers: r }),
    affinityBreaks: new Counter({ name: 'flint_affinity_breaks_total', help: 'Sessions that could not go back to the slot (or member) they ran on, by cause: busy (serving something else), evicted (another session took it over), down (its worker or member went away), moved (free, but another slot held more of the prompt).', labelNames: ['cause'] as const, registers: r }),
    routes: new Counter({ name: 'flint_slot_routes_total', help: 'Slot choices by rule: affinity, prefix, copy, saved, hash (a session key on named remote members), tenant (no key: the least busy member, ties by the tenant), cold.', labelNames: ['route'] as const, registers: r }),
    promptRenders: new Counter({
      name: 'flint_prompt_renders_total',
      help: 'Chat prompts by kind: reused (the slot\'s previous prompt), incremental (only new messages) or full, with the reason for full (cold, diverged, template).',
      labelNames: ['kind', 'reason'] as const,
      registers: r,
    }),
    chatMessages: new Counter({ name: 'flint_ipc_chat_messages_total', help: 'Chat messages of requests sent to workers (sent), and messages the worker already held from the slot\'s previous request and that were not sent again (kept).', labelNames: ['kind'] as const, registers: r }),
    promptRenderSeconds: new Histogram({ name: 'flint_prompt_render_seconds', help: 'Time to render and tokenize a chat prompt in the worker, by mode.', labelNames: ['kind'] as const, buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: r }),
    evictionSaves: new Counter({
      name: 'flint_evicted_prefix_saves_total',
      help: 'Prefixes evicted from slots by requests: saved while the slot was idle (idle), or saved before the request could start (critical).',
      labelNames: ['kind'] as const,
      registers: r,
    }),
    restoredPromptTokens: new Counter({ name: 'flint_prompt_tokens_restored_total', help: 'Prompt tokens restored from saved prefixes instead of evaluated.', registers: r }),
    copiedPromptTokens: new Counter({ name: 'flint_prompt_tokens_copied_total', help: "Prompt tokens copied from another slot's KV cells (a fork of a conversation that slot holds) instead of evaluated.", registers: r }),
    savedPrefixBytes: new Gauge({ name: 'flint_saved_prefix_bytes', help: 'Host memory held by saved prefix states, per worker.', labelNames: ['worker'] as const, registers: r }),
    savedPrefixLimit: new Gauge({ name: 'flint_saved_prefix_limit_bytes', help: 'Configured saved-prefix budget per worker.', registers: r }),
    diskCacheBytes: new Gauge({ name: 'flint_disk_prompt_cache_bytes', help: 'Disk held by the disk prompt cache, per worker (the subfolders it writes).', labelNames: ['worker'] as const, registers: r }),
    diskCacheEntries: new Gauge({ name: 'flint_disk_prompt_cache_entries', help: 'Entries of the disk prompt cache, per worker (the subfolders it writes).', labelNames: ['worker'] as const, registers: r }),
    diskCacheLimit: new Gauge({ name: 'flint_disk_prompt_cache_limit_bytes', help: 'Configured disk prompt cache budget (all workers).', registers: r }),
    diskCacheEntryLimit: new Gauge({ name: 'flint_disk_prompt_cache_limit_entries', help: 'Configured most entries of the disk prompt cache (all workers).', registers: r }),
    diskCacheLookups: new Counter({
      name: 'flint_disk_prompt_cache_lookups_total',
      help: 'Requests with a prefix worth restoring that host memory could not serve: found on disk (hit) or nowhere (miss).',
      labelNames: ['result'] as const,
      registers: r,
    }),
    diskCacheRestores: new Counter({ name: 'flint_disk_prompt_cache_restores_total', help: 'States loaded from the disk prompt cache into a slot (ok), or not (failed: file gone, bad or refused).', labelNames: ['result'] as const, registers: r }),
    diskCacheWriteSeconds: new Histogram({ name: 'flint_disk_prompt_cache_write_seconds', help: 'Time to write one entry to the disk prompt cache (copy, hash, rename).', buckets: latencyBuckets, registers: r }),
    diskCacheReadSeconds: new Histogram({ name: 'flint_disk_prompt_cache_read_seconds', help: 'Time to restore one entry from the disk prompt cache (verify and load).', buckets: latencyBuckets, registers: r }),
    diskCacheBadFiles: new Counter({ name: 'flint_disk_prompt_cache_bad_files_total', help: 'Files of the disk prompt cache deleted unloaded, by reason (corrupt, truncated, model, format).', labelNames: ['reason'] as const, registers: r }),
    diskCacheErrors: new Counter({ name: 'flint_disk_prompt_cache_errors_total', help: 'File-system failures of the disk prompt cache (each a miss), by what was being done (scan, write, read).', labelNames: ['kind'] as const, registers: r }),
    predictedTokens: new Counter({ name: 'flint_predicted_tokens_total', help: 'Draft tokens from predicted outputs, by result (accepted, rejected).', labelNames: ['result'] as const, registers: r }),
    compactions: new Counter({ name: 'flint_compactions_total', help: 'Conversations compacted into a summary (/v1/responses/compact or compaction_trigger).', registers: r }),
    hostedToolsIgnored: new Counter({ name: 'flint_hosted_tools_ignored_total', help: 'Hosted tools (web_search, ...) left out of prompts, by type.', labelNames: ['type'] as const, registers: r }),
    streamOverflows: new Counter({ name: 'flint_stream_overflows_total', help: 'Generations cancelled because their consumer stopped reading.', registers: r }),
    wsSessionsOpen: new Gauge({ name: 'flint_websocket_sessions_open', help: 'Open Responses WebSocket sessions.', registers: r }),
    wsSessions: new Counter({ name: 'flint_websocket_sessions_total', help: 'Responses WebSocket sessions opened.', registers: r }),
    wsResumableSessions: new Gauge({ name: 'flint_websocket_resumable_sessions', help: 'Closed WebSocket sessions kept for a socket that resumes them (websocket.resumeGraceMs).', registers: r }),
    wsResumableBytes: new Gauge({ name: 'flint_websocket_resumable_bytes', help: 'Approximate bytes of conversation those sessions hold.', registers: r }),
    wsResumableLimits: new Gauge({ name: 'flint_websocket_resumable_limit', help: 'Configured bounds of kept sessions: sessions and bytes.', labelNames: ['kind'] as const, registers: r }),
    wsResumes: new Counter({ name: 'flint_websocket_session_resumes_total', help: 'Kept sessions by fate: resumed by a new socket, expired, or evicted to make room.', labelNames: ['result'] as const, registers: r }),
    wsTurnsPerSession: new Histogram({ name: 'flint_websocket_turns_per_session', help: 'Responses completed per WebSocket session, observed at close.', buckets: [0, 1, 2, 5, 10, 20, 50, 100, 500], registers: r }),
    wsTurnTimeToFirstToken: new Histogram({ name: 'flint_websocket_turn_time_to_first_token_seconds', help: 'Per-turn time from response.create to the first token on a WebSocket.', buckets: latencyBuckets, registers: r }),
    storedResponses: new Gauge({
      name: 'flint_stored_responses',
      help: 'Responses in the store.',
      registers: r,
      collect() {
        if (sources.storedResponses) this.set(sources.storedResponses());
      },
    }),
    load: [
      ...loadGauges(r, sources.load, { waiting: 'flint_requests_waiting', running: 'flint_requests_running', kvUsage: 'flint_kv_cache_usage_ratio' }),
      ...(sources.vllmAliases ? loadGauges(r, sources.load, { waiting: 'vllm:num_requests_waiting', running: 'vllm:num_requests_running', kvUsage: 'vllm:gpu_cache_usage_perc' }, ' (Flint, under vLLM\'s name)') : []),
    ],
    threadsPerWorker: new Gauge({ name: 'flint_worker_threads', help: 'Compute threads per worker, for decode steps and for prompt batches.', labelNames: ['phase'] as const, registers: r }),
  };
}

/** The typed instruments, passed to the parts that observe them. */
export type Metrics = ReturnType<typeof createMetrics>;

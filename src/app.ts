import { statSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Config } from './config/schema.js';
import { redactConfig } from './config/loadConfig.js';
import type { Logger } from './core/Logger.js';
import type { ResponseStore } from './core/ResponseStore.js';
import { registerAuth, registerRateLimit } from './http/auth.js';
import { registerConnectionLimits, registerCors } from './http/connectionLimits.js';
import { TenantLimits } from './core/TenantLimits.js';
import { handleClientError, registerErrorHandlers } from './http/errorHandler.js';
import { registerJsonBodyParser } from './http/jsonBodyParser.js';
import { chatCompletionRoutes } from './http/routes/chatCompletions.js';
import { completionRoutes } from './http/routes/completions.js';
import { infillRoutes } from './http/routes/infill.js';
import { ollamaRoutes } from './http/routes/ollama.js';
import { messagesRoutes, thinkingSealPurpose } from './http/routes/messages.js';
import { healthRoutes } from './http/routes/health.js';
import { metricsRoutes } from './http/routes/metrics.js';
import { consolePaths, consoleRoutes } from './http/routes/console.js';
import { statusRoutes } from './http/routes/status.js';
import { RecentLatencies } from './metrics/RecentLatencies.js';
import { createStatusReport } from './metrics/statusReport.js';
import type { RequestObserver } from './core/RequestObserver.js';
import { modelRoutes } from './http/routes/models.js';
import { createLoggerOptions, type LogFormat } from './logging/logger.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { createDiskCacheObserver, createMemberObserver, createRequestObserver, createSchedulerObserver, createResumableObserver, createSessionObserver } from './metrics/observers.js';
import { catalogFile, loadCatalog } from './modelfiles/loadCatalog.js';
import { resolveModelFile, type ResolvedModel } from './modelfiles/resolveModelFile.js';
import type { PullOptions } from './modelfiles/pullModel.js';
import { WorkerPool } from './pool/WorkerPool.js';
import type { ModelInfo } from './core/types.js';
import type { EngineMember } from './pool/EngineMember.js';
import { RemoteMember } from './pool/RemoteMember.js';
import { LlamaServerPool } from './pool/LlamaServerPool.js';
import { RenderedMember } from './pool/RenderedMember.js';
import type { WorkerClient } from './pool/WorkerClient.js';
import type { WorkerSettings } from './ipc/messages.js';
import { ResponseService } from './responses/ResponseService.js';
import { responsesRoutes } from './http/routes/responses.js';
import { Scheduler } from './scheduler/Scheduler.js';
import { RunRegistry } from './core/RunRegistry.js';
import { SqliteResponseStore } from './store/SqliteResponseStore.js';
import { loadSealingKey } from './store/loadSealingKey.js';
import { Sealer } from './utils/Sealer.js';
import { registerUpgradeCleanup, responsesSocketRoutes } from './ws/responsesSocket.js';

export { packageRoot } from './utils/packageRoot.js';

/** How the app logs and whether it may download its model. */
export interface AppOptions {
  readonly logFormat?: LogFormat;
  readonly colorize?: boolean;
  /** Pull a catalog model or `hf:` URI that is not downloaded yet (`serve --pull`). */
  readonly pull?: Omit<PullOptions, 'modelsDir' | 'catalog'>;
}

/** A running gateway: its HTTP server, pool and scheduler, disposed as one. */
export interface App extends AsyncDisposable {
  readonly fastify: FastifyInstance;
  readonly scheduler: Scheduler;
  readonly pool: WorkerPool;
  /** The llama-server workers (`engine.backend: llama-server`); undefined with node-llama-cpp's. */
  readonly llamaServers: LlamaServerPool | undefined;
  /** Remote llama-server members whose prompts this node renders (`upstreams[].render: front`). */
  readonly renderedMembers: readonly RenderedMember[];
  readonly metrics: Metrics;
  readonly model: ResolvedModel;
  readonly responses: ResponseService;
  /** The stored-response database (closed with the app). */
  readonly store: ResponseStore;
  /** Listens on the configured host and port; returns the URL (port 0 resolves to the real port). */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Compute threads per worker. Decoding: the configured value, or one less than the cores split
 * over workers (a core stays free for the event loops; oversubscribed decoding can be ~20x
 * slower on 2 cores). Prompt batches: the configured value, or all cores split over workers.
 */
export function resolveThreads(config: Config): { threads: number; batchThreads: number } {
  const cores = availableParallelism();
  const workers = Math.max(1, config.engine.workers);
  const threads = config.engine.threads > 0 ? config.engine.threads : Math.max(1, Math.floor((cores - 1) / workers));
  const batchThreads = config.engine.batchThreads > 0 ? config.engine.batchThreads : Math.max(threads, Math.floor(cores / workers));
  return { threads, batchThreads };
}

/**
 * Composition root: builds metrics, Fastify, the worker pool and the scheduler from one
 * Config, loads the model in the workers, and returns them as one disposable app.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const store = new SqliteResponseStore(path.resolve(config.dataDir), config.store);
  let scheduler: Scheduler | undefined;
  const metrics = createMetrics({
    storedResponses: () => store.count(),
    load: () => {
      const state = scheduler?.status();
      const context = scheduler?.model?.contextSize ?? 0;
      if (!state) return { waiting: 0, running: 0, kvUsage: 0 };
      const held = state.slots.reduce((sum, s) => sum + s.heldTokens, 0);
      const capacity = state.slots.length * context;
      return { waiting: state.queueDepth, running: state.slots.filter((s) => s.isBusy).length, kvUsage: capacity > 0 ? Math.min(1, held / capacity) : 0 };
    },
    vllmAliases: config.metrics.vllmAliases,
  });
  const fastify = Fastify({
    logger: createLoggerOptions(config.logging.level, options.logFormat, { colorize: options.colorize }),
    bodyLimit: config.server.bodyLimitBytes,
    // Each generation route writes its own summary line; Fastify's per-request lines would double them.
    logController: new LogController({ disableRequestLogging: true }),
    // Shutdown drains: idle keep-alive connections close at once, streams may finish (see close()).
    forceCloseConnections: 'idle',
    // Generation routes refuse with their own 503 while the scheduler drains; Fastify's would lack the OpenAI envelope.
    return503OnClosing: false,
    clientErrorHandler: handleClientError,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    requestTimeout: config.server.requestReceiveTimeoutMs,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
  });
  const logger = fastify.log as unknown as Logger;
  logger.info({ config: redactConfig(config) }, 'effective configuration');

  const modelsDir = path.resolve(config.model.dir);
  // A front only (no local workers) loads no model: its members do (unless it renders their prompts).
  const isFrontOnly = config.engine.workers === 0;
  const rendersForMembers = config.upstreams.some((u) => u.render === 'front');
  const model: ResolvedModel = isFrontOnly && !rendersForMembers ? { path: config.model.path, defaultAlias: '', isDemo: false } : await resolveModelFile(config.model.path, {
    modelsDir,
    demoPreset: config.model.demoPreset,
    catalog: loadCatalog(catalogFile(config.model.catalog)),
    logger,
    pull: options.pull,
  });
  if (model.isDemo) {
    logger.warn(
      { modelPath: model.path },
      'NO MODEL CONFIGURED: serving a generated random-weights DEMO model; its output is gibberish. ' +
        "Serve a real model with 'flint pull <name>' then 'flint serve --model <name>' (or FLINT_MODEL=/path/to/model.gguf).",
    );
  }
  const { threads, batchThreads } = resolveThreads(config);
  metrics.threadsPerWorker.set({ phase: 'decode' }, threads);
  metrics.threadsPerWorker.set({ phase: 'prompt' }, batchThreads);
  metrics.queueLimit.set(config.scheduler.maxQueueLength);

  scheduler = new Scheduler({ ...config.scheduler, retriesBeforeOutput: config.upstream.retries, memberCandidates: config.upstream.candidates, migrateAfterOutput: config.upstream.migrate }, config.engine.workers + config.upstreams.length, logger, createSchedulerObserver(metrics));
  metrics.savedPrefixLimit.set(config.engine.savedPrefixBytes);
  metrics.wsResumableLimits.set({ kind: 'sessions' }, config.websocket.maxResumableSessions);
  metrics.wsResumableLimits.set({ kind: 'bytes' }, config.websocket.maxResumableBytes);
  const diskCache = resolveDiskCache(config);
  metrics.diskCacheLimit.set(diskCache.bytes);
  metrics.diskCacheEntryLimit.set(diskCache.bytes > 0 ? config.engine.diskCacheMaxEntries : 0);
  const diskObserver = createDiskCacheObserver(metrics);
  const alias = config.model.alias || model.defaultAlias;
  const isLlamaServer = config.engine.backend === 'llama-server' && !isFrontOnly;
  /** A local worker (either backend) is up with the model: it serves, and the metrics show it. */
  const onEngineUp = (worker: EngineMember, slots: number, facts: EngineModelFacts, liveWorkers: () => number) => {
    scheduler.setModel({ ...facts, id: alias, aliases: config.model.aliases.filter((a) => a !== alias), file: modelFileStats(model.path), createdS: Math.floor(Date.now() / 1000) });
    scheduler.addWorker(worker, slots);
    metrics.workersUp.set(liveWorkers());
    metrics.workerUp.set({ worker: String(worker.index) }, 1);
    metrics.modelInfo.reset();
    metrics.modelInfo.set({ model: alias, architecture: facts.architecture, context_size: String(facts.contextSize) }, 1);
  };
  const onEngineDown = (index: number, liveWorkers: () => number) => {
    scheduler.removeWorker(index);
    metrics.workersUp.set(liveWorkers());
    metrics.workerUp.set({ worker: String(index) }, 0);
  };
  const workerSettings: WorkerSettings = {
    modelPath: model.path,
    contextSize: config.model.contextSize,
    slots: config.engine.slots,
    threads,
    batchThreads,
    batchThreadsMinTokens: config.engine.batchThreadsMinTokens,
    batchSize: config.engine.batchSize,
    gpu: config.engine.gpu,
    defaultMaxTokens: config.engine.defaultMaxTokens,
    maxOutputTokens: config.engine.maxOutputTokens,
    savedPrefixBytes: config.engine.savedPrefixBytes,
    minSavedPrefixTokens: config.engine.minSavedPrefixTokens,
    diskCacheDir: diskCache.bytes > 0 ? diskCache.dir : '',
    diskCacheBytes: Math.floor(diskCache.bytes / config.engine.workers),
    diskCacheMaxEntries: Math.max(1, Math.floor(config.engine.diskCacheMaxEntries / config.engine.workers)),
    workers: config.engine.workers,
    saveIdleSlotsAfterMs: config.engine.saveIdleSlotsAfterMs,
    streamCoalesceMs: config.engine.streamCoalesceMs,
  };
  const workerModule = {
    modulePath: fileURLToPath(new URL('./worker/workerMain.ts', import.meta.url)),
    execArgv: ['--import', import.meta.resolve('tsx'), ...(process.env.FLINT_WORKER_CPU_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FLINT_WORKER_CPU_PROFILE_DIR}`] : [])],
  };
  /** A worker process (either backend) is up: its facts are the model's. */
  const onWorkerUp = (worker: WorkerClient, slots: number, liveWorkers: () => number) => {
    const incremental = worker.facts.incrementalChat;
    if (!incremental.isIncremental) logger.warn({ workerId: worker.index, chatWrapper: worker.facts.chatWrapper, detail: incremental.failure }, 'the chat template does not render message by message: every chat turn is rendered whole');
    const { contextSize, trainContextSize, architecture, chatWrapper, hasInfill, hasToolCalls, hasThinking, maxTokenChars } = worker.facts;
    worker.onDiskCacheReport((report) => diskObserver.onDiskCacheReport(worker.index, report));
    onEngineUp(worker, slots, { contextSize, trainContextSize, architecture, chatWrapper, hasInfill, hasToolCalls, hasThinking, maxTokenChars }, liveWorkers);
  };
  const pool = new WorkerPool(
    {
      workers: isLlamaServer ? 0 : config.engine.workers,
      ...workerModule,
      settings: workerSettings,
      startTimeoutMs: config.engine.workerStartTimeoutMs,
      heartbeatIntervalMs: config.engine.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.engine.heartbeatTimeoutMs,
      logger,
    },
    {
      onWorkerUp: (worker) => onWorkerUp(worker, config.engine.slots, () => pool.liveWorkers.length),
      onWorkerDown: (index) => onEngineDown(index, () => pool.liveWorkers.length),
      onRestart: () => metrics.workerRestarts.inc(),
    },
  );
  let llamaServers: LlamaServerPool | undefined;
  if (isLlamaServer) {
    const servers: LlamaServerPool = new LlamaServerPool(
      {
        workers: config.engine.workers,
        binary: config.engine.llamaServer.path,
        args: config.engine.llamaServer.args,
        modelPath: model.path,
        contextSize: config.model.contextSize,
        slots: config.engine.slots,
        threads,
        batchThreads,
        batchSize: config.engine.batchSize,
        gpu: config.engine.gpu,
        savedPrefixBytes: config.engine.savedPrefixBytes,
        startTimeoutMs: config.engine.workerStartTimeoutMs,
        hungTimeoutMs: config.engine.heartbeatTimeoutMs,
        probeIntervalMs: config.engine.heartbeatIntervalMs,
        worker: { ...workerModule, settings: workerSettings, heartbeatIntervalMs: config.engine.heartbeatIntervalMs, heartbeatTimeoutMs: config.engine.heartbeatTimeoutMs },
        logger,
      },
      {
        onWorkerUp: (worker, served) => onWorkerUp(worker, served.slots, () => servers.liveWorkers.length),
        onWorkerDown: (index) => onEngineDown(index, () => servers.liveWorkers.length),
        onRestart: () => metrics.workerRestarts.inc(),
      },
    );
    llamaServers = servers;
  }
  const memberObserver = createMemberObserver(metrics);
  // Members whose prompts this node renders are driven by a worker process each; the rest by requests in their own API.
  const rendered = config.upstreams.flatMap((settings, i) => {
    if (settings.render !== 'front') return [];
    const setUp = (isUp: boolean) => metrics.upstreamUp.set({ member: settings.name, kind: settings.kind }, isUp ? 1 : 0);
    setUp(false);
    const liveRendered = () => renderedMembers.filter((a) => a.isUp).length;
    return [
      new RenderedMember(
        config.engine.workers + i,
        settings,
        {
          contextSize: config.model.contextSize,
          probeIntervalMs: config.upstream.probeIntervalMs,
          probeTimeoutMs: config.upstream.probeTimeoutMs,
          startTimeoutMs: config.engine.workerStartTimeoutMs,
          worker: { ...workerModule, settings: workerSettings, heartbeatIntervalMs: config.engine.heartbeatIntervalMs, heartbeatTimeoutMs: config.engine.heartbeatTimeoutMs },
          logger,
          observer: memberObserver,
        },
        {
          onUp: (worker, facts) => {
            setUp(true);
            onWorkerUp(worker, facts.slots, liveRendered);
          },
          onDown: (index) => {
            setUp(false);
            metrics.upstreamDowns.inc({ member: settings.name });
            onEngineDown(index, liveRendered);
          },
        },
      ),
    ];
  });
  const renderedMembers: RenderedMember[] = rendered;
  const members = config.upstreams.flatMap((settings, i) => (settings.render === 'front' ? [] : [new RemoteMember(config.engine.workers + i, settings, config.upstream, logger, memberObserver)]));
  for (const member of members) {
    const labels = { member: member.settings.name, kind: member.settings.kind };
    metrics.upstreamUp.set(labels, 0);
    member.onStateChange((isUp) => {
      metrics.upstreamUp.set(labels, isUp ? 1 : 0);
      if (!isUp) {
        metrics.upstreamDowns.inc({ member: member.settings.name });
        scheduler.removeWorker(member.index);
        return;
      }
      // Without local workers the model's facts come from the configuration and the first member up.
      if (isFrontOnly && !scheduler.model) scheduler.setModel(frontModelInfo(config, member.modelName));
      scheduler.addWorker(member, member.settings.slots);
    });
  }

  const latencies = new RecentLatencies();
  const metricsObserver = createRequestObserver(metrics);
  const observer: RequestObserver = {
    onRequestFinished: (summary) => {
      metricsObserver.onRequestFinished(summary);
      latencies.onRequestFinished(summary);
    },
  };
  const runs = new RunRegistry();
  const tenantLimits = new TenantLimits(config.limits);

  const sealer = new Sealer(loadSealingKey(path.resolve(config.dataDir)));
  const responses = new ResponseService(scheduler, store, {
    acceptAnyModelName: config.model.acceptAnyModelName,
    hostedTools: config.responses.hostedTools,
    compactionMaxTokens: config.responses.compactionMaxTokens,
    sealer,
    onCompacted: () => metrics.compactions.inc(),
    onHostedToolIgnored: (type) => {
      metrics.hostedToolsIgnored.inc({ type });
      logger.debug({ type }, 'hosted tool left out of the prompt');
    },
  });

  registerErrorHandlers(fastify, config.server.bodyLimitBytes);
  registerJsonBodyParser(fastify, { maxDepth: config.server.maxJsonDepth, maxArrayItems: config.server.maxJsonArrayItems });
  registerAuth(fastify, config.server.apiKeys, { hasMetricsToken: config.metrics.token !== '', openPaths: config.console.enabled ? consolePaths : [], frontKeys: config.server.frontKeys });
  registerRateLimit(fastify, tenantLimits);
  registerConnectionLimits(fastify, config.server);
  registerCors(fastify, config.server.corsOrigins);
  registerUpgradeCleanup(fastify);
  // A stable name for this node, so a client or balancer can tell replicas apart (x-flint-replica).
  const replicaId = config.server.replicaId || hostname();
  // On the raw response, so streams that write their own head carry it too.
  fastify.addHook('onRequest', async (_request, reply) => {
    reply.raw.setHeader('x-flint-replica', replicaId);
  });
  await fastify.register(healthRoutes, { gateway: scheduler });
  // /metrics on the API port, or alone on its own port (e.g. reachable only from the monitoring network).
  let metricsServer: FastifyInstance | undefined;
  if (config.metrics.port > 0) {
    metricsServer = Fastify({ logger: false });
    registerErrorHandlers(metricsServer, 1024);
    await metricsServer.register(metricsRoutes, { source: metrics.registry, token: config.metrics.token });
  } else await fastify.register(metricsRoutes, { source: metrics.registry, token: config.metrics.token });
  await fastify.register(modelRoutes, { gateway: scheduler });
  const status = createStatusReport(metrics, {
    gateway: () => scheduler.status(),
    model: () => scheduler.model,
    latencies,
    cacheScope: config.cache.scope,
    savedPrefixLimitBytes: config.engine.savedPrefixBytes,
    startedAt: Date.now(),
  });
  await fastify.register(statusRoutes, { source: status });
  if (config.console.enabled) await fastify.register(consoleRoutes);
  const generationRoutes = {
    gateway: scheduler,
    observer,
    acceptAnyModelName: config.model.acceptAnyModelName,
    requestTimeoutMs: config.server.requestTimeoutMs,
    hostedTools: config.responses.hostedTools,
    progressEventMs: config.server.progressEventMs,
    cacheScope: config.cache.scope,
    runs,
    tenantLimits,
    sessionHeaders: config.websocket.sessionHeaders,
  };
  await fastify.register(chatCompletionRoutes, generationRoutes);
  await fastify.register(completionRoutes, generationRoutes);
  await fastify.register(infillRoutes, generationRoutes);
  await fastify.register(messagesRoutes, {
    ...generationRoutes,
    messages: { dropAttributionBlock: config.anthropic.dropAttributionBlock, openThinking: (signature) => sealer.open(thinkingSealPurpose, signature) },
    sealThinking: (raw) => sealer.seal(thinkingSealPurpose, raw),
  });
  await fastify.register(ollamaRoutes, { ...generationRoutes, json: { maxDepth: config.server.maxJsonDepth, maxArrayItems: config.server.maxJsonArrayItems } });

  await fastify.register(responsesSocketRoutes, {
    service: responses,
    requests: observer,
    allowedOrigins: config.server.corsOrigins,
    limits: { ...config.websocket, json: { maxDepth: config.server.maxJsonDepth, maxArrayItems: config.server.maxJsonArrayItems }, requestTimeoutMs: config.server.requestTimeoutMs, progressEventMs: config.server.progressEventMs, cacheScope: config.cache.scope },
    sessions: createSessionObserver(metrics),
    resumable: createResumableObserver(metrics),
    replicaId,
    runs,
    tenantLimits,
    onSessionEnd: (key) => scheduler.releaseAffinity(key),
  });
  await fastify.register(responsesRoutes, {
    service: responses,
    observer,
    requestTimeoutMs: config.server.requestTimeoutMs,
    progressEventMs: config.server.progressEventMs,
    cacheScope: config.cache.scope,
    runs,
    tenantLimits,
    sessionHeaders: config.websocket.sessionHeaders,
  });

  try {
    await pool.start();
    await llamaServers?.start();
    // Each member's first probe before the listener opens: a front whose members are up is ready at once.
    await Promise.all([...members.map((m) => m.startProbing()), ...renderedMembers.map((a) => a.start())]);
  } catch (err) {
    for (const member of members) member.dispose();
    await Promise.all(renderedMembers.map((a) => a.dispose()));
    await pool.dispose();
    await llamaServers?.dispose();
    await fastify.close();
    store.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  /**
   * Graceful shutdown: readiness turns 503 and queued requests get 503 at once; no new listener
   * connections; in-flight streams may finish within `server.shutdownGraceMs`, then each is stopped
   * with its protocol's terminal event; WebSockets close 1001 after theirs; workers stop once
   * their generations have; the store is closed last, so no accepted write is lost.
   */
  const close = () =>
    (closing ??= (async () => {
      const drained = scheduler.close();
      // No new connections from here on (a balancer sends them to another replica at once); the
      // ones open keep their requests, which now get 503 or run to the end of the grace period.
      if (fastify.server.listening) fastify.server.close(() => undefined);
      const grace = setTimeout(() => {
        logger.warn({ inFlight: runs.size }, 'shutdown grace period over: stopping what still runs');
        runs.stopAll('shutdown');
        // Clients that do not read their terminal event are cut off shortly after.
        setTimeout(() => fastify.server.closeAllConnections(), 2_000).unref();
      }, config.server.shutdownGraceMs);
      grace.unref();
      await fastify.close();
      await runs.idle();
      clearTimeout(grace);
      await metricsServer?.close();
      await drained;
      for (const member of members) member.dispose();
      await Promise.all(renderedMembers.map((a) => a.dispose()));
      await pool.dispose();
      await llamaServers?.dispose();
      store.close();
    })());

  return {
    fastify,
    scheduler,
    pool,
    llamaServers,
    renderedMembers,
    metrics,
    model,
    responses,
    store,
    async listen() {
      const address = await fastify.listen({ host: config.server.host, port: config.server.port });
      if (metricsServer) {
        const metricsUrl = await metricsServer.listen({ host: config.server.host, port: config.metrics.port });
        logger.info({ url: metricsUrl }, 'metrics listening');
      }
      return address;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The disk prompt cache: `<dataDir>/prompt-cache`, and its budget for all workers together (0 when
 * off: saving itself is off without host memory for it).
 */
function resolveDiskCache(config: Config): { dir: string; bytes: number } {
  const bytes = config.engine.savedPrefixBytes > 0 ? config.engine.diskCacheBytes : 0;
  return { dir: path.join(path.resolve(config.dataDir), 'prompt-cache'), bytes };
}

/** What a local worker reports of the model it loaded; the app adds the names, file and time. */
type EngineModelFacts = Omit<ModelInfo, 'id' | 'aliases' | 'file' | 'createdS'>;

/**
 * The served model of a front without local workers: its name from `model.alias` (else the
 * member's own), its context from `model.contextSize`; members enforce the real limits and
 * report overflows, so the front's coarse length check only refuses what cannot fit anywhere.
 */
function frontModelInfo(config: Config, memberModel: string | undefined): ModelInfo {
  const contextSize = config.model.contextSize;
  return {
    id: config.model.alias || memberModel || 'default',
    aliases: config.model.aliases,
    contextSize,
    trainContextSize: contextSize,
    architecture: 'remote',
    chatWrapper: 'remote',
    hasInfill: true,
    hasToolCalls: true,
    hasThinking: false,
    maxTokenChars: 64,
    createdS: Math.floor(Date.now() / 1000),
  };
}

/** Size and write time of the model file (for Ollama's model lists); absent if it cannot be read. */
function modelFileStats(file: string): { sizeBytes: number; modifiedAt: string } | undefined {
  try {
    const stats = statSync(file);
    return { sizeBytes: stats.size, modifiedAt: stats.mtime.toISOString() };
  } catch {
    return undefined;
  }
}

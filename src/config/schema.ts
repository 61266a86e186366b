import { Type, type Static } from '@sinclair/typebox';

const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)));

/** The whole configuration; every limit has a default here and in `config/flint.yaml`. */
export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        /** Interface to bind; loopback unless you mean to expose it. */
        host: Type.String({ default: '127.0.0.1', minLength: 1 }),
        /** This node's name in `x-flint-replica` on every response and WebSocket handshake (empty: the host name). */
        replicaId: Type.String({ default: '', maxLength: 128, pattern: '^[A-Za-z0-9._:-]*$' }),
        /** TCP port; 0 picks a free one and prints it. */
        port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
        /** Largest accepted request body (a 128k-token conversation is well under 1 MiB of JSON). */
        bodyLimitBytes: Type.Integer({ default: 8 * 1024 * 1024, minimum: 1024 }),
        /** Deepest JSON nesting accepted in a body or WebSocket frame (tool schemas nest a dozen levels). */
        maxJsonDepth: Type.Integer({ default: 64, minimum: 4, maximum: 1000 }),
        /** Most items in one JSON array of a body or frame (conversation items, tools, ...). */
        maxJsonArrayItems: Type.Integer({ default: 50_000, minimum: 16 }),
        /** Bearer keys (or `sha256:<hex>` of a key); empty means no authentication. */
        apiKeys: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /**
         * Keys of Flint fronts that serve from this node (config `upstreams` there): accepted like
         * apiKeys, and such a request may name its tenant in `x-flint-tenant`, so this node keeps
         * the front's tenants apart (prompt cache, limits). Give a front a key of its own.
         */
        frontKeys: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /** Open TCP connections in all, and from one client address; more are refused at accept. */
        maxConnections: Type.Integer({ default: 4096, minimum: 1 }),
        maxConnectionsPerIp: Type.Integer({ default: 256, minimum: 1 }),
        /** A client must send its request headers within this, and its whole request within `requestReceiveTimeoutMs`. */
        headersTimeoutMs: Type.Integer({ default: 30_000, minimum: 1_000 }),
        requestReceiveTimeoutMs: Type.Integer({ default: 120_000, minimum: 1_000 }),
        /** An idle keep-alive connection is closed after this. */
        keepAliveTimeoutMs: Type.Integer({ default: 65_000, minimum: 1_000 }),
        /** Browser origins allowed to call the API (CORS) and open WebSockets; empty = none (non-browser clients send no Origin). */
        corsOrigins: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /** Allow a non-loopback `host` without keys (only behind a proxy that authenticates). */
        allowUnauthenticatedRemote: Type.Boolean({ default: false }),
        /** Whole-request deadline, queueing included. */
        requestTimeoutMs: Type.Integer({ default: 600_000, minimum: 1_000 }),
        /**
         * A stream waits this long for admission before its status is sent (fast failures stay HTTP errors);
         * while queued or in prefill after that, it gets a progress event this often (data, which clients' idle timers count).
         */
        progressEventMs: Type.Integer({ default: 2_000, minimum: 100, maximum: 60_000 }),
        /** How long in-flight work may finish after shutdown starts. */
        shutdownGraceMs: Type.Integer({ default: 5_000, minimum: 0 }),
      },
      { default: {}, additionalProperties: false },
    ),
    model: Type.Object(
      {
        /** GGUF path, catalog name or `hf:` URI; empty means the generated demo model. */
        path: Type.String({ default: '' }),
        /** Model id that clients send and `/v1/models` lists; empty derives it from the file name. */
        alias: Type.String({ default: '' }),
        /** Extra names that resolve to the same model. */
        aliases: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /** Map any requested model name to the served model (clients that hard-code names). */
        acceptAnyModelName: Type.Boolean({ default: false }),
        /** Tokens per slot (each slot is one llama.cpp sequence with this much KV cache). */
        contextSize: Type.Integer({ default: 4096, minimum: 64, maximum: 1_048_576 }),
        /** Synthetic preset generated and served when no model is configured. */
        demoPreset: Type.Union([Type.Literal('tiny'), Type.Literal('tiny-think'), Type.Literal('tiny-chat'), Type.Literal('small'), Type.Literal('qwen2.5-0.5b')], { default: 'tiny' }),
        /** Folder for downloaded and generated models. */
        dir: Type.String({ default: 'models', minLength: 1 }),
        /** Catalog of models known by name (`flint models`); empty means the packaged `config/catalog.yaml`. */
        catalog: Type.String({ default: '' }),
      },
      { default: {}, additionalProperties: false },
    ),
    engine: Type.Object(
      {
        /** llama.cpp worker processes. */
        workers: Type.Integer({ default: 1, minimum: 0, maximum: 64 }),
        /**
         * What runs each worker: `node-llama-cpp` (embedded, the default) or `llama-server`, llama.cpp's own
         * server started by Flint on a loopback port (its C++ loop, same GGUF; needs `llamaServer.path`).
         */
        backend: Type.Union([Type.Literal('node-llama-cpp'), Type.Literal('llama-server')], { default: 'node-llama-cpp' }),
        llamaServer: Type.Object(
          {
            /** The `llama-server` binary (FLINT_LLAMA_SERVER); a bare name is looked up on PATH. */
            path: Type.String({ default: '' }),
            /** Extra arguments passed as they are (e.g. `["--flash-attn", "on"]`), after Flint's own. */
            args: Type.Array(Type.String({ maxLength: 4096 }), { default: [], maxItems: 64 }),
          },
          { default: {}, additionalProperties: false },
        ),
        /** Sequences (slots) per worker context. */
        slots: Type.Integer({ default: 2, minimum: 1, maximum: 256 }),
        /** Compute threads per worker for decoding; 0 = one less than the available cores, split over workers, at least 1. */
        threads: Type.Integer({ default: 0, minimum: 0, maximum: 1024 }),
        /** Compute threads per worker for prompt batches; 0 = all available cores split over workers (at least `threads`). */
        batchThreads: Type.Integer({ default: 0, minimum: 0, maximum: 1024 }),
        /** Batches with at least this many tokens use `batchThreads`; smaller ones (decode steps) use `threads`. */
        batchThreadsMinTokens: Type.Integer({ default: 32, minimum: 1 }),
        /** Tokens per llama.cpp batch during prompt evaluation. */
        batchSize: Type.Integer({ default: 512, minimum: 1, maximum: 65_536 }),
        /** Use a GPU when node-llama-cpp finds one. */
        gpu: Type.Union([Type.Literal('auto'), Type.Literal('off'), Type.Literal('cuda'), Type.Literal('vulkan'), Type.Literal('metal')], { default: 'off' }),
        /** How long a worker may take to load the model. */
        workerStartTimeoutMs: Type.Integer({ default: 120_000, minimum: 1_000 }),
        /** Liveness ping interval to each worker. */
        heartbeatIntervalMs: Type.Integer({ default: 2_000, minimum: 100 }),
        /** A worker silent this long is killed and restarted like a crashed one. */
        heartbeatTimeoutMs: Type.Integer({ default: 20_000, minimum: 500 }),
        /** Host memory per worker for KV states of evicted prefixes (0 disables saving). */
        savedPrefixBytes: Type.Integer({ default: 256 * 1024 * 1024, minimum: 0 }),
        /**
         * Disk for KV states that host memory evicts, under `<dataDir>/prompt-cache`, shared by the workers
         * (each gets an equal share to write) and kept across restarts (0 = off; needs `savedPrefixBytes` > 0).
         */
        diskCacheBytes: Type.Integer({ default: 0, minimum: 0 }),
        /** Most entries in the disk prompt cache, split over the workers like the bytes. */
        diskCacheMaxEntries: Type.Integer({ default: 4096, minimum: 1, maximum: 1_000_000 }),
        /** Prefixes shorter than this are recomputed rather than saved. */
        minSavedPrefixTokens: Type.Integer({ default: 64, minimum: 1 }),

        /** A slot idle this long (while no slot of its worker generates) is saved ahead of time, so the request that evicts it does not wait. */
        saveIdleSlotsAfterMs: Type.Integer({ default: 250, minimum: 0, maximum: 3_600_000 }),
        /** Text generated within this many ms of the last delta is streamed together (0 = one delta per token). */
        streamCoalesceMs: Type.Number({ default: 5, minimum: 0, maximum: 1000 }),
        /** Ceiling on generated tokens of any request, whatever it asks (0 = up to the context end). */
        maxOutputTokens: Type.Integer({ default: 32_768, minimum: 0 }),
        /** Default cap on generated tokens when a request sets none (0 = up to the context end). */
        defaultMaxTokens: Type.Integer({ default: 0, minimum: 0 }),
      },
      { default: {}, additionalProperties: false },
    ),
    scheduler: Type.Object(
      {
        /** Requests waiting for a slot before new ones get 503 `server_overloaded` with Retry-After (a balancer sends them elsewhere). */
        maxQueueLength: Type.Integer({ default: 64, minimum: 0, maximum: 100_000 }),
        /** Longest wait for a slot before a queued request gets 503. */
        maxQueueWaitMs: Type.Integer({ default: 60_000, minimum: 0 }),
        /** Generated text buffered for a client that stopped reading before its generation is cancelled. */
        maxStreamBufferBytes: Type.Integer({ default: 4 * 1024 * 1024, minimum: 1024 }),
      },
      { default: {}, additionalProperties: false },
    ),
    websocket: Type.Object(
      {
        /** Largest accepted client frame; bigger frames close the socket with 1009. */
        maxFrameBytes: Type.Integer({ default: 8 * 1024 * 1024, minimum: 1024 }),
        /** Open sockets, in all and per API key (or per client address without keys). */
        maxSockets: Type.Integer({ default: 1024, minimum: 1 }),
        maxSocketsPerKey: Type.Integer({ default: 64, minimum: 1 }),
        /** A socket with no frames and nothing in flight for this long is closed (1000). */
        idleTimeoutMs: Type.Integer({ default: 600_000, minimum: 1_000 }),
        /** Server ping interval; a socket that has not answered a ping in twice this is closed (1001). */
        pingIntervalMs: Type.Integer({ default: 30_000, minimum: 100 }),
        /** Connection lifetime; afterwards `websocket_connection_limit_reached` and close 1001. */
        maxLifetimeMs: Type.Integer({ default: 3_600_000, minimum: 1_000 }),
        /** Unsent bytes to a slow reader before the socket stops pulling tokens. */
        maxSendBufferBytes: Type.Integer({ default: 8 * 1024 * 1024, minimum: 1024 }),
        /** Responses running or queued on one socket. */
        maxQueuedResponses: Type.Integer({ default: 16, minimum: 1 }),
        /** Client frames per second per socket (0 = off); faster frames get a 429 error event. */
        maxMessagesPerSecond: Type.Number({ default: 50, minimum: 0 }),
        /** Frames a socket may send at once above that rate. */
        maxMessagesBurst: Type.Integer({ default: 200, minimum: 1 }),
        /** Recent responses each socket keeps for `previous_response_id` with `store: false`. */
        connectionCacheSize: Type.Integer({ default: 8, minimum: 1 }),
        /** Responses of one socket that run at once, one per `stream_id` lane; more lanes wait their turn. */
        maxConcurrentLanes: Type.Integer({ default: 4, minimum: 1, maximum: 64 }),
        /**
         * Headers that name a session: a WebSocket's resumable session (from the handshake; then the `session`
         * query parameter), and the affinity key of HTTP requests without `prompt_cache_key` (their slot, and
         * their member behind a front).
         */
        sessionHeaders: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { default: ['x-flint-session', 'session-id', 'session_id'], maxItems: 8 }),
        /** How long a closed socket's responses and slot pin wait for a socket with the same session and key (0 = off). */
        resumeGraceMs: Type.Integer({ default: 120_000, minimum: 0, maximum: 86_400_000 }),
        /** Closed sessions kept for resumption, and the bytes of conversation they may hold in all; the oldest go first. */
        maxResumableSessions: Type.Integer({ default: 512, minimum: 0 }),
        maxResumableBytes: Type.Integer({ default: 128 * 1024 * 1024, minimum: 0 }),
      },
      { default: {}, additionalProperties: false },
    ),
    responses: Type.Object(
      {
        /** Hosted tools Flint cannot run (web_search, file_search, ...): left out of the prompt, or refused with 400. */
        hostedTools: Type.Union([Type.Literal('ignore'), Type.Literal('reject')], { default: 'ignore' }),
        /** Token cap of a compaction summary. */
        compactionMaxTokens: Type.Integer({ default: 2048, minimum: 16, maximum: 65_536 }),
      },
      { default: {}, additionalProperties: false },
    ),
    limits: Type.Object(
      {
        /** Sustained API requests per second per key (per client address without keys); 0 = off. */
        requestsPerSecond: Type.Number({ default: 50, minimum: 0 }),
        /** Requests a key may send at once above that rate. */
        burst: Type.Integer({ default: 100, minimum: 1 }),
        /** Generations one key may have queued or running at once; 0 = off. */
        concurrentGenerations: Type.Integer({ default: 32, minimum: 0 }),
      },
      { default: {}, additionalProperties: false },
    ),
    anthropic: Type.Object(
      {
        /** Leave Claude Code's per-request attribution block (`x-anthropic-billing-header: ...`) out of the prompt, so the conversation stays a cached prefix. */
        dropAttributionBlock: Type.Boolean({ default: true }),
      },
      { default: {}, additionalProperties: false },
    ),
    cache: Type.Object(
      {
        /**
         * Who shares prompt-cache entries: `key` (each API key its own; requests without keys share one),
         * or `shared` (everyone: faster for one team, but cached-token counts and timing then tell one
         * tenant which prefixes another sent, a cross-tenant side channel).
         */
        scope: Type.Union([Type.Literal('key'), Type.Literal('shared')], { default: 'key' }),
      },
      { default: {}, additionalProperties: false },
    ),
    console: Type.Object(
      {
        /** The web console on `/` and `/console/` (a playground and a live status view); its pages hold no data, the API calls they make need a key as usual. */
        enabled: Type.Boolean({ default: true }),
      },
      { default: {}, additionalProperties: false },
    ),
    metrics: Type.Object(
      {
        /** When set, `/metrics` needs `Authorization: Bearer <token>` (and not an API key). */
        token: Type.String({ default: '' }),
        /** When > 0, `/metrics` is served only on this port (on `server.host`), not on the API port. */
        port: Type.Integer({ default: 0, minimum: 0, maximum: 65535 }),
        /** Also export the load gauges under vLLM's names (`vllm:num_requests_waiting`, `vllm:num_requests_running`, `vllm:gpu_cache_usage_perc`) for routers that read only those. */
        vllmAliases: Type.Boolean({ default: false }),
      },
      { default: {}, additionalProperties: false },
    ),
    store: Type.Object(
      {
        /** Stored responses kept (oldest pruned first). */
        maxResponses: Type.Integer({ default: 10_000, minimum: 1 }),
        /** Total bytes of stored responses and their conversations (oldest pruned first). */
        maxBytes: Type.Integer({ default: 512 * 1024 * 1024, minimum: 1024 }),
        /** Age after which a stored response is gone (OpenAI keeps 30 days). */
        maxAgeS: Type.Integer({ default: 30 * 24 * 3600, minimum: 1 }),
      },
      { default: {}, additionalProperties: false },
    ),
    download: Type.Object(
      {
        /** Hugging Face endpoint or mirror for `hf:` URIs (else `HF_ENDPOINT`, else https://huggingface.co). */
        hfEndpoint: Type.String({ default: '' }),
        /** Token for gated or private repositories (else `HF_TOKEN`); better set in the environment than in a file. */
        hfToken: Type.String({ default: '' }),
        /** When the output is not a terminal, a progress line is printed this often. */
        progressIntervalMs: Type.Integer({ default: 5_000, minimum: 100, maximum: 3_600_000 }),
      },
      { default: {}, additionalProperties: false },
    ),
    logging: Type.Object(
      {
        /** Least severe level written. */
        level: Type.Unsafe<'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'>({ ...LogLevel, default: 'info' }),
        /** `pretty`: short human lines (pino-pretty); `json`: one JSON object per line; `auto`: pretty on a terminal, else JSON. */
        format: Type.Union([Type.Literal('auto'), Type.Literal('pretty'), Type.Literal('json')], { default: 'auto' }),
      },
      { default: {}, additionalProperties: false },
    ),
    /**
     * Remote engines served next to (or, with `engine.workers: 0`, instead of) local workers: other
     * Flint nodes, llama-server, vLLM, Ollama or any OpenAI-compatible server with the same model.
     * Flint keeps sockets, sessions and stored responses; members only generate.
     */
    upstreams: Type.Array(
      Type.Object(
        {
          /** Name in logs, metrics and errors. */
          name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' }),
          /** Base URL of the member (`http://10.0.0.2:8080`). */
          url: Type.String({ pattern: '^https?://[^\\s]+$' }),
          /** What serves it: its readiness probe and the sampling settings it reads. */
          kind: Type.Union([Type.Literal('flint'), Type.Literal('llama-server'), Type.Literal('vllm'), Type.Literal('ollama'), Type.Literal('openai')], { default: 'openai' }),
          /** Bearer key the member expects (empty: none). */
          key: Type.String({ default: '' }),
          /** Model name sent to it (empty: the first its /v1/models lists). */
          model: Type.String({ default: '' }),
          /** Requests run on it at once (its slots in the scheduler; more wait in Flint's queue). */
          slots: Type.Integer({ default: 4, minimum: 1, maximum: 1024 }),
          /**
           * Who applies the chat template. `member`: chat requests, which the member renders and
           * tokenizes whole every turn. `front` (llama-server, vllm and ollama members): this node
           * renders and tokenizes each turn itself, incrementally, and sends token ids
           * (llama-server: `/completion` to the slot it chose, `cache_prompt`; vLLM:
           * `/v1/completions`) or the rendered text (Ollama: `/api/generate` with `raw`); tool
           * calls, thoughts and grammars are this node's. It needs `model.path`, a GGUF of the
           * member's model (loaded for its vocabulary and template only). A llama-server
           * member's slots should serve this front alone.
           */
          render: Type.Union([Type.Literal('member'), Type.Literal('front')], { default: 'member' }),
        },
        { additionalProperties: false },
      ),
      { default: [], maxItems: 64 },
    ),
    upstream: Type.Object(
      {
        /** Readiness probe of each member this often; a member that fails it (or a request) leaves the pool until one succeeds. */
        probeIntervalMs: Type.Integer({ default: 2_000, minimum: 100, maximum: 600_000 }),
        probeTimeoutMs: Type.Integer({ default: 2_000, minimum: 100, maximum: 60_000 }),
        /** A member must answer a request (its response headers) within this, else it is marked down and the request retried. */
        connectTimeoutMs: Type.Integer({ default: 10_000, minimum: 100, maximum: 600_000 }),
        /** A member's stream that sends nothing (not even a keep-alive) for this long counts as hung: it is marked down and the request retried or ended. */
        streamIdleTimeoutMs: Type.Integer({ default: 120_000, minimum: 1_000, maximum: 3_600_000 }),
        /** Other members a request tries when its member fails before any output. */
        retries: Type.Integer({ default: 2, minimum: 0, maximum: 8 }),
        /**
         * R, the bounded spill: a session (a request with a cache key) starts only on the first R members its key
         * ranks by rendezvous hashing, waiting when all R are busy, so its KV prefix lives on at most R members.
         * Set it to the number of members to let any idle member take any session.
         */
        candidates: Type.Integer({ default: 2, minimum: 1, maximum: 64 }),
        /**
         * A chat answer cut mid-stream by its member's failure goes on, once, on a member that can
         * continue it (Flint nodes and vLLM, with `continue_final_message`): the client gets the
         * rest of the answer instead of an error. Only answers that are plain text so far (no
         * thought, no tool call) migrate; off: such a stream ends with its error event.
         */
        migrate: Type.Boolean({ default: true }),
      },
      { default: {}, additionalProperties: false },
    ),
    /** Stored responses, saved prefixes and other state. */
    dataDir: Type.String({ default: '.flint', minLength: 1 }),
  },
  { additionalProperties: false },
);

/** The validated, frozen configuration. */
export type Config = Static<typeof ConfigSchema>;

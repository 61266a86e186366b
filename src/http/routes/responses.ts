import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestObserver } from '../../core/RequestObserver.js';
import type { RunRegistry } from '../../core/RunRegistry.js';
import type { TenantLimits } from '../../core/TenantLimits.js';
import type { SlotPlacement } from '../../core/types.js';
import { FlintError } from '../../errors/FlintError.js';
import type { ResponseObject, WireEvent } from '../../protocol/responses/ResponseStream.js';
import { sseEvent } from '../../protocol/sse.js';
import type { ResponseService } from '../../responses/ResponseService.js';
import { beginHttpRun, sessionCacheKey } from '../runGeneration.js';
import { SseWriter } from '../sendStream.js';

/** Options of the Responses routes. */
export interface ResponsesRouteOptions {
  readonly service: ResponseService;
  readonly observer: RequestObserver;
  readonly requestTimeoutMs: number;
  /** How long a stream waits for admission before its status goes out; then its progress-event interval. */
  readonly progressEventMs: number;
  /** Config `cache.scope`. */
  readonly cacheScope: 'key' | 'shared';
  /** Runs in flight, for graceful shutdown. */
  readonly runs: RunRegistry;
  /** Per-tenant limits (concurrent generations). */
  readonly tenantLimits: TenantLimits;
  /** Headers that name the client's session (config `websocket.sessionHeaders`). */
  readonly sessionHeaders: readonly string[];
}

/** Codex's sticky-routing header: set on every response, replayed by the client within a turn. */
const turnStateHeader = 'x-codex-turn-state';

/** `POST /v1/responses` (JSON or SSE), `POST /v1/responses/compact` and the stored-response routes. */
export async function responsesRoutes(app: FastifyInstance, options: ResponsesRouteOptions): Promise<void> {
  const { service } = options;

  app.post('/v1/responses', async (request, reply) => {
    const isStream = (request.body as { stream?: unknown } | null)?.stream === true;
    await using run = beginHttpRun(request, reply, 'responses', options, isStream ? options.progressEventMs : undefined);
    let events: AsyncGenerator<WireEvent, ResponseObject>;
    let first: IteratorResult<WireEvent, ResponseObject>;
    try {
      const parsed = service.parse(request.body);
      run.setModel(parsed.model);
      events = service.run(parsed, run, { tenant: request.tenant, isStream: parsed.isStream, ...routingHints(request, parsed.body.prompt_cache_key ?? undefined, service, options.sessionHeaders) });
      first = await events.next();
    } catch (err) {
      throw run.fail(err);
    }
    const turnState: Record<string, string> = run.placement ? { [turnStateHeader]: service.toTurnState(run.placement) } : {};
    try {
      if (!isStream) {
        let result = first;
        while (!result.done) result = await events.next();
        void reply.headers(turnState);
        return result.value;
      }
      const sse = new SseWriter(reply, { 'x-request-id': String(request.id), ...turnState });
      try {
        for (let next = first; !next.done; next = await events.next()) await sse.write(sseEvent(next.value.type, next.value.json));
      } finally {
        sse.end();
      }
    } finally {
      await events.return(undefined as never); // runs run()'s own cleanup if it stopped early
    }
  });

  app.post('/v1/responses/compact', async (request, reply) => {
    await using run = beginHttpRun(request, reply, 'responses', options);
    try {
      const parsed = service.parse(request.body);
      run.setModel(parsed.model);
      return await service.compact(parsed, run, request.tenant);
    } catch (err) {
      throw run.fail(err);
    }
  });

  app.get<{ Params: { id: string } }>('/v1/responses/:id', async (request) => service.stored.retrieve(request.params.id, request.tenant));
  app.delete<{ Params: { id: string } }>('/v1/responses/:id', async (request) => service.stored.delete(request.params.id, request.tenant));
  app.post<{ Params: { id: string } }>('/v1/responses/:id/cancel', async (request) => service.cancel(request.params.id, request.tenant));
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>('/v1/responses/:id/input_items', async (request) => {
    const q = request.query;
    const limit = q.limit === undefined ? undefined : Number(q.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 100)) {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'limit', details: { detail: "Invalid value for 'limit': expected an integer from 1 to 100." } });
    }
    if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc') {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'order', details: { detail: "Invalid value for 'order': expected asc or desc." } });
    }
    return service.stored.inputItems(request.params.id, request.tenant, { limit, order: q.order, after: q.after, before: q.before });
  });
}

/**
 * Where the client wants this request to run: `prompt_cache_key`, else its session header
 * (`x-flint-session`, Codex's `session_id`), as the affinity key; and the slot a verified
 * `x-codex-turn-state` names.
 */
function routingHints(request: FastifyRequest, promptCacheKey: string | undefined, service: ResponseService, sessionHeaders: readonly string[]): { cacheKey?: string; slotHint?: SlotPlacement } {
  const cacheKey = promptCacheKey ?? sessionCacheKey(request, sessionHeaders);
  const turnState = request.headers[turnStateHeader];
  return { cacheKey, slotHint: service.fromTurnState(typeof turnState === 'string' ? turnState : undefined) };
}

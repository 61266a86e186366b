import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SlotPlacement } from '../../core/types.js';
import type { RequestObserver } from '../../core/RequestObserver.js';
import { FlintError } from '../../errors/FlintError.js';
import type { ResponseObject, WireEvent } from '../../protocol/responses/ResponseStream.js';
import type { ResponseService } from '../../protocol/responses/ResponseService.js';
import { sseEvent } from '../../protocol/sse.js';
import { GenerationTracker } from '../GenerationTracker.js';
import { createRequestSignal, SseWriter } from '../sendStream.js';

/** Options of the Responses routes. */
export interface ResponsesRouteOptions {
  readonly service: ResponseService;
  readonly observer: RequestObserver;
  readonly requestTimeoutMs: number;
}

/** Codex's sticky-routing header: set on every response, replayed by the client within a turn. */
const turnStateHeader = 'x-codex-turn-state';

/** `POST /v1/responses` (JSON or SSE), `POST /v1/responses/compact` and the stored-response routes. */
export async function responsesRoutes(app: FastifyInstance, options: ResponsesRouteOptions): Promise<void> {
  const { service } = options;

  app.post('/v1/responses', async (request, reply) => {
    const tracker = new GenerationTracker('responses', options.observer, request);
    let parsed;
    try {
      parsed = service.parse(request.body);
    } catch (err) {
      throw tracker.fail(err);
    }
    tracker.setModel(parsed.model);
    const signal = createRequestSignal(reply, options.requestTimeoutMs);
    let turnState: string | undefined;
    const run = service.run(parsed, {
      signal,
      isStream: parsed.isStream,
      ...routingHints(request, parsed.body.prompt_cache_key ?? undefined, service),
      onGenerationEvent: (event) => {
        if (event.type === 'delta' || event.type === 'tool_call' || event.type === 'reasoning') tracker.onText();
        else if (event.type === 'start') turnState = service.toTurnState(event.placement);
        else if (event.type === 'done') tracker.onDone(event);
      },
    });
    let first: IteratorResult<WireEvent, ResponseObject>;
    try {
      first = await run.next();
    } catch (err) {
      throw tracker.fail(err);
    }

    if (!parsed.isStream) {
      let result = first;
      try {
        while (!result.done) result = await run.next();
      } catch (err) {
        throw tracker.fail(err);
      } finally {
        await run.return(undefined as never);
      }
      tracker.finish(200, result.value.status === 'failed' ? 'error' : undefined);
      if (turnState) void reply.header(turnStateHeader, turnState);
      return result.value;
    }

    const sse = new SseWriter(reply, { 'x-request-id': String(request.id), ...(turnState ? { [turnStateHeader]: turnState } : {}) });
    try {
      for (let next = first; ; next = await run.next()) {
        if (next.done) {
          tracker.finish(200, next.value.status === 'failed' ? 'error' : undefined);
          break;
        }
        await sse.write(sseEvent(next.value.type, next.value.json));
      }
    } catch (err) {
      // run() turns failures into response.failed; anything reaching here is a bug.
      tracker.fail(err);
      request.log.error({ err }, 'responses stream failed');
    } finally {
      sse.end();
      await run.return(undefined as never); // runs run()'s own cleanup (slot, in-flight entry) if it stopped early
    }
  });

  app.post('/v1/responses/compact', async (request, reply) => {
    const tracker = new GenerationTracker('responses', options.observer, request);
    try {
      const parsed = service.parse(request.body);
      tracker.setModel(parsed.model);
      const result = await service.compact(parsed, createRequestSignal(reply, options.requestTimeoutMs));
      tracker.finish(200);
      return result;
    } catch (err) {
      throw tracker.fail(err);
    }
  });

  app.get<{ Params: { id: string } }>('/v1/responses/:id', async (request) => service.retrieve(request.params.id));
  app.delete<{ Params: { id: string } }>('/v1/responses/:id', async (request) => service.delete(request.params.id));
  app.post<{ Params: { id: string } }>('/v1/responses/:id/cancel', async (request) => service.cancel(request.params.id));
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>('/v1/responses/:id/input_items', async (request) => {
    const q = request.query;
    const limit = q.limit === undefined ? undefined : Number(q.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 100)) {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'limit', details: { detail: "Invalid value for 'limit': expected an integer from 1 to 100." } });
    }
    if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc') {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'order', details: { detail: "Invalid value for 'order': expected asc or desc." } });
    }
    return service.inputItems(request.params.id, { limit, order: q.order, after: q.after, before: q.before });
  });
}

/**
 * Where the client wants this request to run: `prompt_cache_key`, else Codex's `session_id`
 * header, as the affinity key; and the slot a verified `x-codex-turn-state` names.
 */
function routingHints(request: FastifyRequest, promptCacheKey: string | undefined, service: ResponseService): { cacheKey?: string; slotHint?: SlotPlacement } {
  const session = request.headers.session_id ?? request.headers['session-id'];
  const cacheKey = promptCacheKey ?? (typeof session === 'string' && session.length > 0 && session.length <= 256 ? `session:${session}` : undefined);
  const turnState = request.headers[turnStateHeader];
  return { cacheKey, slotHint: service.fromTurnState(typeof turnState === 'string' ? turnState : undefined) };
}

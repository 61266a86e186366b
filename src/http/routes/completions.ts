import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../core/Gateway.js';
import type { RequestObserver } from '../../core/RequestObserver.js';
import type { FinishReason, RequestId, Usage } from '../../core/types.js';
import { FlintError } from '../../errors/FlintError.js';
import { toWireError } from '../../errors/toWireError.js';
import { CompletionStreamEncoder, toCompletion } from '../../protocol/completions/CompletionEncoder.js';
import { parseCompletionRequest } from '../../protocol/completions/parseCompletionRequest.js';
import { resolveModelName } from '../../protocol/models.js';
import { sseData, sseDone } from '../../protocol/sse.js';
import { createId } from '../../utils/ids.js';
import { GenerationTracker } from '../GenerationTracker.js';
import { createRequestSignal, SseWriter } from '../sendStream.js';
import type { ChatRouteOptions } from './chatCompletions.js';

/** `POST /v1/completions`: raw prompts, and fill-in-the-middle with `suffix` (the editor path). */
export async function completionRoutes(app: FastifyInstance, options: ChatRouteOptions): Promise<void> {
  const { gateway } = options;
  app.post('/v1/completions', async (request, reply) => {
    const tracker = new GenerationTracker('completions', options.observer, request);
    const id = createId('cmpl-');
    const createdS = Math.floor(Date.now() / 1000);
    let parsed;
    try {
      const model = servedModel(gateway);
      parsed = parseCompletionRequest(request.body, id as RequestId, (name) => resolveModelName(name, model, options.acceptAnyModelName));
    } catch (err) {
      throw tracker.fail(err);
    }
    tracker.setModel(parsed.model);
    const signal = createRequestSignal(reply, options.requestTimeoutMs);
    const events = gateway.generate(parsed.request, { signal })[Symbol.asyncIterator]();
    try {
      const first = await events.next();
      if (first.done || first.value.type !== 'start') throw new FlintError('FLINT_ERR_INTERNAL');
    } catch (err) {
      throw tracker.fail(err);
    }

    if (!parsed.isStream) {
      let text = parsed.echo;
      let finish: { reason: FinishReason; usage: Usage } | undefined;
      try {
        for (let next = await events.next(); !next.done; next = await events.next()) {
          const event = next.value;
          if (event.type === 'delta') {
            tracker.onText();
            text += event.text;
          } else if (event.type === 'done') {
            finish = { reason: event.finishReason, usage: event.usage };
            tracker.onDone(event);
          }
        }
      } catch (err) {
        throw tracker.fail(err);
      }
      if (!finish) throw tracker.fail(new FlintError('FLINT_ERR_INTERNAL'));
      tracker.finish(200);
      return toCompletion(id, parsed.model, createdS, text, finish.reason, finish.usage);
    }

    const encoder = new CompletionStreamEncoder(id, parsed.model, createdS, parsed.includeUsage);
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    try {
      if (parsed.echo) await sse.write(sseData(encoder.text(parsed.echo)));
      for (let next = await events.next(); !next.done; next = await events.next()) {
        const event = next.value;
        if (event.type === 'delta') {
          tracker.onText();
          await sse.write(sseData(encoder.text(event.text)));
        } else if (event.type === 'done') {
          tracker.onDone(event);
          await sse.write(sseData(encoder.finish(event.finishReason)));
          if (parsed.includeUsage) await sse.write(sseData(encoder.usage(event.usage)));
          await sse.write(sseDone);
        }
      }
      tracker.finish(200);
    } catch (err) {
      tracker.fail(err);
      await sse.write(sseData(JSON.stringify(toWireError(err).body)));
    } finally {
      sse.end();
    }
  });
}

function servedModel(gateway: Gateway) {
  const model = gateway.model;
  if (!model) throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: 'model loading', retryAfterS: 2 } });
  return model;
}

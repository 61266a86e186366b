import type { FastifyInstance } from 'fastify';
import type { RequestId } from '../../core/types.js';
import { CompletionStreamEncoder, toCompletion } from '../../protocol/completions/CompletionEncoder.js';
import { parseCompletionRequest } from '../../protocol/completions/parseCompletionRequest.js';
import { resolveModelName } from '../../protocol/models.js';
import { sseData } from '../../protocol/sse.js';
import { createId } from '../../utils/ids.js';
import { GenerationTracker } from '../GenerationTracker.js';
import { awaitStart, collectGeneration, streamGeneration } from '../runGeneration.js';
import { createRequestSignal, SseWriter } from '../sendStream.js';
import { servedModel, type ChatRouteOptions } from './chatCompletions.js';

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
    const events = gateway.generate(parsed.request, { signal: createRequestSignal(reply, options.requestTimeoutMs) })[Symbol.asyncIterator]();
    await awaitStart(events, tracker);

    if (!parsed.isStream) {
      const { text, done } = await collectGeneration(events, tracker);
      return toCompletion(id, parsed.model, createdS, parsed.echo + text, done.finishReason, done.usage);
    }
    const encoder = new CompletionStreamEncoder(id, parsed.model, createdS, parsed.includeUsage);
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    if (parsed.echo) await sse.write(sseData(encoder.text(parsed.echo)));
    const includeUsage = parsed.includeUsage;
    await streamGeneration(events, tracker, sse, {
      delta: (text) => encoder.text(text),
      done: (event) => [encoder.finish(event.finishReason), ...(includeUsage ? [encoder.usage(event.usage)] : [])],
    });
  });
}

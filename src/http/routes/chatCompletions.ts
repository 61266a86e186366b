import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../core/Gateway.js';
import type { RequestObserver } from '../../core/RequestObserver.js';
import type { RequestId } from '../../core/types.js';
import { FlintError } from '../../errors/FlintError.js';
import { ChatStreamEncoder, toChatCompletion, toChatFinishReason } from '../../protocol/chat/ChatEncoder.js';
import { parseChatRequest } from '../../protocol/chat/parseChatRequest.js';
import { resolveModelName } from '../../protocol/models.js';
import { sseData } from '../../protocol/sse.js';
import { createId } from '../../utils/ids.js';
import { GenerationTracker } from '../GenerationTracker.js';
import { awaitStart, collectGeneration, streamGeneration } from '../runGeneration.js';
import { createRequestSignal, SseWriter } from '../sendStream.js';

/** Options of the Chat Completions and Completions routes. */
export interface ChatRouteOptions {
  readonly gateway: Gateway;
  readonly observer: RequestObserver;
  readonly acceptAnyModelName: boolean;
  readonly requestTimeoutMs: number;
}

/** The served model, or 503 while it is loading. */
export function servedModel(gateway: Gateway) {
  const model = gateway.model;
  if (!model) throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: 'model loading', retryAfterS: 2 } });
  return model;
}

/** `POST /v1/chat/completions`, JSON or SSE. */
export async function chatCompletionRoutes(app: FastifyInstance, options: ChatRouteOptions): Promise<void> {
  const { gateway } = options;
  app.post('/v1/chat/completions', async (request, reply) => {
    const tracker = new GenerationTracker('chat', options.observer, request);
    const id = createId('chatcmpl-');
    const createdS = Math.floor(Date.now() / 1000);
    let parsed;
    try {
      const model = servedModel(gateway);
      parsed = parseChatRequest(request.body, id as RequestId, (name) => resolveModelName(name, model, options.acceptAnyModelName));
    } catch (err) {
      throw tracker.fail(err);
    }
    tracker.setModel(parsed.model);
    const events = gateway.generate(parsed.request, { signal: createRequestSignal(reply, options.requestTimeoutMs) })[Symbol.asyncIterator]();
    await awaitStart(events, tracker);

    if (!parsed.isStream) {
      const { text, toolCalls, done } = await collectGeneration(events, tracker);
      return toChatCompletion(id, parsed.model, createdS, text, done.finishReason, done.usage, toolCalls);
    }
    const encoder = new ChatStreamEncoder(id, parsed.model, createdS, parsed.includeUsage);
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    await sse.write(sseData(encoder.role()));
    const includeUsage = parsed.includeUsage;
    await streamGeneration(events, tracker, sse, {
      delta: (text) => encoder.content(text),
      toolCall: (index, call) => encoder.toolCall(index, call),
      done: (event) => [encoder.finish(toChatFinishReason(event.finishReason)), ...(includeUsage ? [encoder.usage(event.usage)] : [])],
    });
  });
}

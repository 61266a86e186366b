import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../core/Gateway.js';
import type { RequestObserver } from '../../core/RequestObserver.js';
import type { FinishReason, RequestId, ToolCall, Usage } from '../../core/types.js';
import { FlintError } from '../../errors/FlintError.js';
import { toWireError } from '../../errors/toWireError.js';
import { ChatStreamEncoder, toChatCompletion, toChatFinishReason } from '../../protocol/chat/ChatEncoder.js';
import { parseChatRequest } from '../../protocol/chat/parseChatRequest.js';
import { resolveModelName } from '../../protocol/models.js';
import { sseData, sseDone } from '../../protocol/sse.js';
import { createId } from '../../utils/ids.js';
import { createRequestSignal, SseWriter } from '../sendStream.js';
import { GenerationTracker } from '../GenerationTracker.js';

/** Options of the Chat Completions route. */
export interface ChatRouteOptions {
  readonly gateway: Gateway;
  readonly observer: RequestObserver;
  readonly acceptAnyModelName: boolean;
  readonly requestTimeoutMs: number;
}

/** `POST /v1/chat/completions`, JSON or SSE. */
export async function chatCompletionRoutes(app: FastifyInstance, options: ChatRouteOptions): Promise<void> {
  const { gateway } = options;
  app.post('/v1/chat/completions', async (request, reply) => {
    const tracker = new GenerationTracker('chat', options.observer, request);
    const model = gateway.model;
    if (!model) throw tracker.fail(new FlintError('FLINT_ERR_NOT_READY', { details: { reason: 'model loading', retryAfterS: 2 } }));
    const id = createId('chatcmpl-');
    const createdS = Math.floor(Date.now() / 1000);
    let parsed;
    try {
      parsed = parseChatRequest(request.body, id as RequestId, (name) => resolveModelName(name, model, options.acceptAnyModelName));
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
      let text = '';
      const toolCalls: ToolCall[] = [];
      let finish: { reason: FinishReason; usage: Usage } | undefined;
      try {
        for (let next = await events.next(); !next.done; next = await events.next()) {
          const event = next.value;
          if (event.type === 'delta') {
            tracker.onText();
            text += event.text;
          } else if (event.type === 'tool_call') {
            tracker.onText();
            toolCalls.push(event.call);
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
      return toChatCompletion(id, parsed.model, createdS, text, finish.reason, finish.usage, toolCalls);
    }

    const encoder = new ChatStreamEncoder(id, parsed.model, createdS, parsed.includeUsage);
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    let toolIndex = 0;
    try {
      await sse.write(sseData(encoder.role()));
      for (let next = await events.next(); !next.done; next = await events.next()) {
        const event = next.value;
        if (event.type === 'delta') {
          tracker.onText();
          await sse.write(sseData(encoder.content(event.text)));
        } else if (event.type === 'tool_call') {
          tracker.onText();
          await sse.write(sseData(encoder.toolCall(toolIndex++, event.call)));
        } else if (event.type === 'done') {
          tracker.onDone(event);
          await sse.write(sseData(encoder.finish(toChatFinishReason(event.finishReason))));
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

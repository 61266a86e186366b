import type { FastifyInstance } from 'fastify';
import { ChatStreamEncoder, toChatCompletion, toChatFinishReason } from '../../protocol/chat/ChatEncoder.js';
import { parseChatRequest } from '../../protocol/chat/parseChatRequest.js';
import { sseData } from '../../protocol/sse.js';
import { beginGeneration, collectGeneration, streamGeneration, type GenerationRouteOptions } from '../runGeneration.js';
import { SseWriter } from '../sendStream.js';

/** `POST /v1/chat/completions`, JSON or SSE. */
export async function chatCompletionRoutes(app: FastifyInstance, options: GenerationRouteOptions): Promise<void> {
  app.post('/v1/chat/completions', async (request, reply) => {
    const { id, createdS, parsed, run } = await beginGeneration(request, reply, options, 'chat', 'chatcmpl-', parseChatRequest);
    // Freed on every way out, a throw while rendering or writing included.
    await using _run = run;
    if (!parsed.isStream) {
      const { text, toolCalls, done } = await collectGeneration(run);
      return toChatCompletion(id, parsed.model, createdS, text, done.finishReason, done.usage, toolCalls, parsed.toolTable);
    }
    const encoder = new ChatStreamEncoder(id, parsed.model, createdS, parsed.includeUsage);
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    await sse.write(sseData(encoder.role()));
    let completionTokens = 0;
    await streamGeneration(run, sse, {
      delta: (text, tokens) => {
        completionTokens += tokens;
        return encoder.content(text, parsed.continuousUsage ? { promptTokens: run.promptTokens, completionTokens } : undefined);
      },
      progress: (p) => encoder.progress(p),
      toolCall: (index, call) => encoder.toolCall(index, call, parsed.toolTable),
      done: (event) => [encoder.finish(toChatFinishReason(event.finishReason)), ...(parsed.includeUsage ? [encoder.usage(event.usage)] : [])],
    });
  });
}

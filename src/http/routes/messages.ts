import type { FastifyInstance } from 'fastify';
import type { GenerationEvent, RequestId } from '../../core/types.js';
import { FlintError } from '../../errors/FlintError.js';
import { MessageContent, MessagesStream, toAnthropicError, toMessage } from '../../protocol/anthropic/MessagesEncoder.js';
import { parseMessagesRequest, type MessagesOptions, type ParsedMessagesRequest } from '../../protocol/anthropic/parseMessagesRequest.js';
import { beginGeneration, type GenerationRouteOptions } from '../runGeneration.js';
import { SseWriter } from '../sendStream.js';

/**
 * Anthropic's Messages API (Claude Code, the Anthropic SDKs): `POST /v1/messages` as JSON or as
 * its SSE event sequence, and `POST /v1/messages/count_tokens` (the prompt is evaluated into the
 * cache, which also warms it for the request that follows). Same runner, slots and cache as
 * every other route; errors in Anthropic's envelope (see errorHandler).
 */
/** The exact prompt length a context-overflow error reports (the worker counted it), if any. */
function overflowCount(err: unknown): number | undefined {
  if (!(err instanceof FlintError) || err.code !== 'FLINT_ERR_CONTEXT_OVERFLOW') return undefined;
  const tokens = err.details.promptTokens;
  return typeof tokens === 'number' ? tokens : undefined;
}

/** Seal purpose of thoughts handed out as `thinking` signatures. */
export const thinkingSealPurpose = 'flint.anthropic-thinking.v1';

export async function messagesRoutes(app: FastifyInstance, options: GenerationRouteOptions & { readonly messages: MessagesOptions; readonly sealThinking: (raw: string) => string }): Promise<void> {
  const parse = (countOnly: boolean) => (body: unknown, id: RequestId, resolveModel: (requested: unknown) => string) => parseMessagesRequest(body, id, resolveModel, options.messages, countOnly);

  app.post('/v1/messages/count_tokens', async (request, reply) => {
    try {
      const { run } = await beginGeneration(request, reply, options, 'messages', 'msg_', parse(true));
      await using _run = run;
      let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
      try {
        for await (const event of run.events()) if (event.type === 'done') done = event;
        if (!done) throw new FlintError('FLINT_ERR_INTERNAL');
      } catch (err) {
        if (overflowCount(err) === undefined) throw run.fail(err);
        run.finish(200);
        throw err;
      }
      run.finish(200);
      return { input_tokens: done.usage.promptTokens };
    } catch (err) {
      // A prompt longer than the context still has a count: how a client learns it must compact.
      const promptTokens = overflowCount(err);
      if (promptTokens === undefined) throw err;
      return { input_tokens: promptTokens };
    }
  });

  app.post('/v1/messages', async (request, reply) => {
    const { id, parsed, run } = await beginGeneration<ParsedMessagesRequest>(request, reply, options, 'messages', 'msg_', parse(false));
    await using _run = run;
    const showThought = parsed.isThinkingShown;
    if (!parsed.isStream) {
      const content = new MessageContent();
      let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
      try {
        for await (const event of run.events()) {
          if (event.type === 'delta') content.text(event.text);
          else if (event.type === 'reasoning' && showThought) {
            if (event.text) content.thought(event.text);
            if (event.raw) content.sign(options.sealThinking(event.raw));
          } else if (event.type === 'tool_call') content.toolUse(event.call);
          else if (event.type === 'done') {
            done = event;
            if (showThought && event.reasoning) content.sign(options.sealThinking(event.reasoning));
          }
        }
        if (!done) throw new FlintError('FLINT_ERR_INTERNAL');
      } catch (err) {
        throw run.fail(err);
      }
      run.finish(200);
      return toMessage(id, parsed.model, content, done.finishReason, done.usage);
    }
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    const stream = new MessagesStream(id, parsed.model);
    let isStarted = false;
    try {
      for await (const event of run.events()) {
        if (event.type === 'start') {
          isStarted = true;
          await sse.write(stream.start(event.promptTokens, event.cachedTokens));
        } else if (event.type === 'tick') await sse.write(stream.ping());
        else if (event.type === 'delta') await sse.write(stream.text(event.text));
        else if (event.type === 'reasoning' && showThought) {
          if (event.raw) stream.sign(options.sealThinking(event.raw));
          if (event.text) await sse.write(stream.thought(event.text));
        }
        else if (event.type === 'tool_call') await sse.write(stream.toolUse(event.call));
        else if (event.type === 'done') {
          if (showThought && event.reasoning) stream.sign(options.sealThinking(event.reasoning));
          await sse.write((isStarted ? '' : stream.start(event.usage.promptTokens, event.usage.cachedTokens)) + stream.finish(event.finishReason, event.usage.completionTokens));
        }
      }
      run.finish(200);
    } catch (err) {
      const wire = run.failInStream(err);
      const anthropic = toAnthropicError(wire.status, wire.body.error.message, wire.body.error.code === 'server_overloaded');
      await sse.write(stream.error(anthropic.body.error.type, anthropic.body.error.message));
    } finally {
      sse.end();
    }
  });
}

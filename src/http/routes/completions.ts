import type { FastifyInstance } from 'fastify';
import { CompletionStreamEncoder, toCompletion } from '../../protocol/completions/CompletionEncoder.js';
import { parseCompletionRequest } from '../../protocol/completions/parseCompletionRequest.js';
import { sseData } from '../../protocol/sse.js';
import { beginGeneration, collectGeneration, streamGeneration, type GenerationRouteOptions } from '../runGeneration.js';
import { SseWriter } from '../sendStream.js';

/** `POST /v1/completions`: raw prompts, and fill-in-the-middle with `suffix` (the editor path). */
export async function completionRoutes(app: FastifyInstance, options: GenerationRouteOptions): Promise<void> {
  app.post('/v1/completions', async (request, reply) => {
    const { id, createdS, parsed, run } = await beginGeneration(request, reply, options, 'completions', 'cmpl-', parseCompletionRequest);
    // Freed on every way out, a throw while rendering or writing included.
    await using _run = run;
    if (!parsed.isStream) {
      const { text, done } = await collectGeneration(run);
      return toCompletion(id, parsed.model, createdS, parsed.echo + text, done.finishReason, done.usage);
    }
    const encoder = new CompletionStreamEncoder(id, parsed.model, createdS, parsed.includeUsage);
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    if (parsed.echo) await sse.write(sseData(encoder.text(parsed.echo)));
    await streamGeneration(run, sse, {
      delta: (text) => encoder.text(text),
      progress: (p) => encoder.progress(p),
      done: (event) => [encoder.finish(event.finishReason), ...(parsed.includeUsage ? [encoder.usage(event.usage)] : [])],
    });
  });
}

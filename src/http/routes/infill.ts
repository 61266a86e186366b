import type { FastifyInstance } from 'fastify';
import { toInfillChunk, toInfillResult, type InfillSettings } from '../../protocol/infill/InfillEncoder.js';
import { parseInfillRequest } from '../../protocol/infill/parseInfillRequest.js';
import { sseData } from '../../protocol/sse.js';
import { beginGeneration, collectGeneration, type GenerationRouteOptions } from '../runGeneration.js';
import { SseWriter } from '../sendStream.js';

/**
 * llama.cpp's `POST /infill` (llama.vscode, llama.vim and other completion plugins): the prompt
 * laid out as llama-server lays it out, the response with its fields. Streams end with the full
 * final object (`stop: true`) and no `[DONE]`, as llama-server's do.
 */
export async function infillRoutes(app: FastifyInstance, options: GenerationRouteOptions): Promise<void> {
  app.post('/infill', async (request, reply) => {
    const { parsed, run } = await beginGeneration(request, reply, options, 'infill', 'infill-', parseInfillRequest);
    await using _run = run;
    const settings: InfillSettings = {
      model: parsed.model,
      contextSize: options.gateway.model?.contextSize ?? 0,
      maxTokens: parsed.request.maxTokens,
      temperature: parsed.request.sampling.temperature,
    };
    if (!parsed.isStream) {
      const { text, done } = await collectGeneration(run);
      return toInfillResult(text, done, settings, parsed.responseFields);
    }
    const sse = new SseWriter(reply, { 'x-request-id': String(request.id) });
    let content = '';
    let predicted = 0;
    let evaluated = 0;
    try {
      for await (const event of run.events()) {
        if (event.type === 'start') evaluated = event.promptTokens;
        else if (event.type === 'delta') {
          content += event.text;
          predicted += event.tokens;
          await sse.write(sseData(toInfillChunk(event.text, predicted, evaluated)));
        } else if (event.type === 'done') await sse.write(sseData(JSON.stringify(toInfillResult('', event, settings, parsed.responseFields))));
      }
      run.finish(200);
    } catch (err) {
      await sse.write(sseData(JSON.stringify(run.failInStream(err).body)));
    } finally {
      sse.end();
    }
  });
}

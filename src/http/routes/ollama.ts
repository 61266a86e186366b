import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FlintError } from '../../errors/FlintError.js';
import { resolveModelName } from '../../protocol/models.js';
import { ollamaApiVersion, toChatLine, toGenerateLine, toOllamaDone, toOllamaModel, toOllamaRunning, toOllamaShow, toOllamaToolCall } from '../../protocol/ollama/OllamaEncoder.js';
import { parseOllamaChat, parseOllamaGenerate, withoutLatestTag, type ParsedOllamaRequest } from '../../protocol/ollama/parseOllamaRequest.js';
import { beginGeneration, collectGeneration, servedModel, type GenerationRouteOptions } from '../runGeneration.js';
import { SseWriter } from '../sendStream.js';
import { registerAnyBodyAsJson } from '../jsonBodyParser.js';
import type { JsonShapeLimits } from '../../utils/checkJsonShape.js';

/**
 * Ollama's API, for the editors and tools that find local models through it (VS Code Copilot
 * BYOK, Continue, Zed, Open WebUI...): the model list and details, and `/api/chat` and
 * `/api/generate` on the same runner, slots and cache as the OpenAI routes. Streams are NDJSON
 * (`stream` defaults to true, as in Ollama); errors are Ollama's `{"error": "..."}`.
 */
export async function ollamaRoutes(app: FastifyInstance, options: GenerationRouteOptions & { readonly json: JsonShapeLimits }): Promise<void> {
  registerAnyBodyAsJson(app, options.json);
  app.get('/api/version', async () => ({ version: ollamaApiVersion }));
  app.get('/api/tags', async () => ({ models: [toOllamaModel(servedModel(options.gateway))] }));
  app.get('/api/ps', async () => ({ models: [toOllamaRunning(servedModel(options.gateway))] }));
  app.post('/api/show', async (request) => {
    const body = (request.body ?? {}) as { model?: unknown; name?: unknown };
    const name = typeof body.model === 'string' ? body.model : typeof body.name === 'string' ? body.name : undefined;
    if (name === undefined) throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: 'model' });
    const model = servedModel(options.gateway);
    resolveModelName(withoutLatestTag(name), model, options.acceptAnyModelName);
    return toOllamaShow(model);
  });
  for (const route of ['/api/embed', '/api/embeddings']) {
    app.post(route, async () => {
      throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: 'model', details: { detail: 'This server generates text only; embeddings are not supported.' } });
    });
  }

  app.post('/api/chat', async (request, reply) => generate(request, reply, options, 'ollama_chat', parseOllamaChat));
  app.post('/api/generate', async (request, reply) => {
    const body = request.body as { prompt?: unknown; suffix?: unknown; model?: unknown } | null;
    // An empty prompt only loads the model in Ollama; here it is always loaded.
    if (body && (body.prompt === undefined || body.prompt === '') && (body.suffix === undefined || body.suffix === '') && typeof body.model === 'string') {
      resolveModelName(withoutLatestTag(body.model), servedModel(options.gateway), options.acceptAnyModelName);
      return { model: body.model, created_at: new Date().toISOString(), response: '', done: true, done_reason: 'load' };
    }
    return generate(request, reply, options, 'ollama_generate', parseOllamaGenerate);
  });
}

type Parse = (body: unknown, id: never, resolveModel: (requested: unknown) => string) => ParsedOllamaRequest;

async function generate(request: FastifyRequest, reply: FastifyReply, options: GenerationRouteOptions, api: 'ollama_chat' | 'ollama_generate', parse: Parse) {
  const startedAt = performance.now();
  const { parsed, run } = await beginGeneration(request, reply, options, api, 'ollama-', parse as never);
  await using _run = run;
  const isChat = api === 'ollama_chat';
  const model = parsed.model;
  if (!parsed.isStream) {
    const { text, reasoning: thinking, toolCalls, done } = await collectGeneration(run);
    const closing = toOllamaDone(done, performance.now() - startedAt);
    const createdAt = new Date().toISOString();
    if (isChat) {
      const message = { role: 'assistant', content: text, ...(thinking ? { thinking } : {}), ...(toolCalls.length > 0 ? { tool_calls: toolCalls.map(toOllamaToolCall) } : {}) };
      return { model, created_at: createdAt, message, ...closing };
    }
    return { model, created_at: createdAt, response: text, ...(thinking ? { thinking } : {}), ...closing };
  }
  const out = new SseWriter(reply, { 'content-type': 'application/x-ndjson', 'x-request-id': String(request.id) });
  try {
    for await (const event of run.events()) {
      if (event.type === 'delta') await out.write(isChat ? toChatLine(model, { content: event.text }) : toGenerateLine(model, { response: event.text }));
      else if (event.type === 'reasoning' && event.text) await out.write(isChat ? toChatLine(model, { content: '', thinking: event.text }) : toGenerateLine(model, { response: '', thinking: event.text }));
      else if (event.type === 'tool_call' && isChat) await out.write(toChatLine(model, { content: '', tool_calls: [toOllamaToolCall(event.call)] }));
      else if (event.type === 'done') {
        const closing = toOllamaDone(event, performance.now() - startedAt);
        const head = isChat ? { message: { role: 'assistant', content: '' } } : { response: '' };
        await out.write(`${JSON.stringify({ model, created_at: new Date().toISOString(), ...head, ...closing })}\n`);
      }
    }
    run.finish(200);
  } catch (err) {
    await out.write(`${JSON.stringify({ error: run.failInStream(err).body.error.message })}\n`);
  } finally {
    out.end();
  }
}

/**
 * The Vercel AI SDK (`ai`, pinned in scripts/installClients.ts, loaded from .clients/)
 * against a spawned Flint: `@ai-sdk/openai-compatible` over Chat Completions and
 * `@ai-sdk/openai`'s Responses model (`openai.responses(id)`) over /v1/responses, two turns
 * with generateText and streamText, and a forced tool call that round-trips.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLoggingProxy, summarizeExchanges, type LoggingProxy } from './loggingProxy.js';
import { clientVersion, longInstructions, loadClient, Report, requestDelta, scrapeMetrics, startFlint, withDeadline, type Flint } from './support.js';

/* The few AI SDK shapes used here (the packages are not a dependency of the project, so no static types). */
type Usage = { inputTokens?: number; outputTokens?: number; inputTokenDetails?: { cacheReadTokens?: number; noCacheTokens?: number } };
type ToolCall = { toolCallId: string; toolName: string; input: Record<string, unknown> };
type Message = { role: string; content: unknown };
type GenerateResult = { text: string; finishReason: string; usage: Usage; toolCalls: ToolCall[]; response: { messages: Message[] }; providerMetadata?: Record<string, Record<string, unknown>>; warnings?: unknown[] };
type Ai = {
  generateText(options: Record<string, unknown>): Promise<GenerateResult>;
  streamText(options: Record<string, unknown>): { fullStream: AsyncIterable<{ type: string; [k: string]: unknown }>; usage: Promise<Usage>; response: Promise<{ messages: Message[] }>; finishReason: Promise<string>; providerMetadata: Promise<Record<string, Record<string, unknown>> | undefined> };
  tool(definition: Record<string, unknown>): unknown;
  jsonSchema(schema: Record<string, unknown>): unknown;
};

const report = new Report('aisdk');
const turnTimeoutMs = 60_000;
let flint: Flint;
let proxy: LoggingProxy;
let ai: Ai;
let chatModel: unknown;
let responsesModel: unknown;
let weatherTool: unknown;
const clientLabel = (kind: 'chat' | 'responses') => `ai ${clientVersion('ai')} + ${kind === 'chat' ? `@ai-sdk/openai-compatible ${clientVersion('@ai-sdk/openai-compatible')}` : `@ai-sdk/openai ${clientVersion('@ai-sdk/openai')}`}`;

before(async () => {
  flint = await startFlint({ contextSize: 8192 });
  // The SDK talks to Flint through a loopback proxy that records what it sends (see .clients/reports/aisdk-requests.json).
  proxy = await startLoggingProxy(flint.url);
  ai = await loadClient<Ai>('ai');
  const { createOpenAICompatible } = await loadClient('@ai-sdk/openai-compatible');
  const { createOpenAI } = await loadClient('@ai-sdk/openai');
  chatModel = createOpenAICompatible({ name: 'flint', baseURL: `${proxy.url}/v1`, apiKey: 'unused', includeUsage: true }).chatModel(flint.modelId);
  responsesModel = createOpenAI({ name: 'flint', baseURL: `${proxy.url}/v1`, apiKey: 'unused' }).responses(flint.modelId);
  weatherTool = ai.tool({
    description: 'Current weather for a city.',
    // An enum keeps grammar-constrained arguments short on a random-weights model.
    inputSchema: ai.jsonSchema({ type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Tokyo', 'Lima'] } }, required: ['city'], additionalProperties: false }),
  });
});

after(async () => {
  report.write(proxy ? summarizeExchanges(proxy.exchanges) : undefined);
  await proxy?.close();
  await flint?.stop();
});

function assertCachedShare(next: Usage, previous: Usage, label: string): number {
  const cached = next.inputTokenDetails?.cacheReadTokens ?? 0;
  const share = cached / (previous.inputTokens ?? Infinity);
  assert.ok(share >= 0.9, `${label}: cacheReadTokens ${cached}, previous prompt ${previous.inputTokens} (${(share * 100).toFixed(1)}%); usage ${JSON.stringify(next)}`);
  return share;
}

function assertGenerated(result: { finishReason: string; usage: Usage }, label: string): void {
  assert.ok(['stop', 'length', 'tool-calls'].includes(result.finishReason), `${label}: finishReason ${result.finishReason}`);
  assert.ok((result.usage.outputTokens ?? 0) > 0, `${label}: usage ${JSON.stringify(result.usage)}`);
}

/** streamText to the end: finish reason, usage, messages and time to the first text delta. */
async function streamTurn(options: Record<string, unknown>): Promise<{ finishReason: string; usage: Usage; messages: Message[]; ttftMs: number | undefined; providerMetadata: Record<string, Record<string, unknown>> | undefined }> {
  return withDeadline('streamText', turnTimeoutMs, async (abortSignal) => {
    const started = Date.now();
    const result = ai.streamText({ ...options, abortSignal });
    let ttftMs: number | undefined;
    const parts: string[] = [];
    for await (const part of result.fullStream) {
      parts.push(part.type);
      if (ttftMs === undefined && part.type === 'text-delta') ttftMs = Date.now() - started;
      if (part.type === 'error') throw new Error(`stream error part: ${JSON.stringify(part).slice(0, 1000)}`);
    }
    const [finishReason, usage, response, providerMetadata] = await Promise.all([result.finishReason, result.usage, result.response, result.providerMetadata]);
    return { finishReason, usage, messages: response.messages, ttftMs, providerMetadata };
  });
}

const api = { chat: 'chat', responses: 'responses' } as const;

for (const kind of ['chat', 'responses'] as const) {
  const model = () => (kind === 'chat' ? chatModel : responsesModel);
  const label = kind === 'chat' ? '@ai-sdk/openai-compatible (Chat Completions)' : '@ai-sdk/openai responses() (Responses)';

  test(`${label}: generateText, two turns with the whole history`, { timeout: 120_000 }, async (t) => {
    const figures = report.entry(clientLabel(kind), `${kind} generateText`);
    const before = await scrapeMetrics(flint.url);
    const messages: Message[] = [{ role: 'user', content: 'Say hi.' }];
    let started = Date.now();
    const first = await withDeadline('turn 1', turnTimeoutMs, (abortSignal) => ai.generateText({ model: model(), instructions: longInstructions, messages, maxOutputTokens: 16, abortSignal, maxRetries: 0 }));
    figures.turnMs.push(Date.now() - started);
    assertGenerated(first, 'turn 1');
    figures.turns++;
    figures.firstPromptTokens = first.usage.inputTokens;
    // @ai-sdk/openai (store defaults to true) sends the earlier assistant message back as an `item_reference`.
    messages.push(...first.response.messages, { role: 'user', content: 'Say hi again.' });
    started = Date.now();
    const second = await withDeadline('turn 2', turnTimeoutMs, (abortSignal) => ai.generateText({ model: model(), instructions: longInstructions, messages, maxOutputTokens: 16, abortSignal, maxRetries: 0 }));
    figures.turnMs.push(Date.now() - started);
    assertGenerated(second, 'turn 2');
    figures.turns++;
    figures.cachedShareOfSecondPrompt = assertCachedShare(second.usage, first.usage, 'turn 2');
    const delta = requestDelta(before, await scrapeMetrics(flint.url));
    t.diagnostic(`flint requests: ${JSON.stringify(delta)}; turn 2 usage ${JSON.stringify(second.usage.inputTokenDetails)}`);
    assert.equal(delta[`${api[kind]}/200/ok`], 2, JSON.stringify(delta));
  });

  test(`${label}: streamText, two turns${kind === 'responses' ? ' chained with previousResponseId' : ''}`, { timeout: 120_000 }, async (t) => {
    const figures = report.entry(clientLabel(kind), `${kind} streamText`);
    const before = await scrapeMetrics(flint.url);
    const messages: Message[] = [{ role: 'user', content: 'Say hi.' }];
    let started = Date.now();
    const first = await streamTurn({ model: model(), instructions: longInstructions, messages, maxOutputTokens: 16, maxRetries: 0 });
    figures.turnMs.push(Date.now() - started);
    if (first.ttftMs !== undefined) figures.ttftMs.push(first.ttftMs);
    assertGenerated(first, 'turn 1');
    figures.turns++;
    figures.firstPromptTokens = first.usage.inputTokens;
    started = Date.now();
    const responseId = first.providerMetadata?.openai?.responseId as string | undefined;
    if (kind === 'responses') assert.ok(responseId, `no providerMetadata.openai.responseId: ${JSON.stringify(first.providerMetadata)}`);
    const second =
      kind === 'responses'
        ? await streamTurn({ model: model(), messages: [{ role: 'user', content: 'Say hi again.' }], providerOptions: { openai: { previousResponseId: responseId } }, maxOutputTokens: 16, maxRetries: 0 })
        : await streamTurn({ model: model(), instructions: longInstructions, messages: [...messages, ...first.messages, { role: 'user', content: 'Say hi again.' }], maxOutputTokens: 16, maxRetries: 0 });
    figures.turnMs.push(Date.now() - started);
    if (second.ttftMs !== undefined) figures.ttftMs.push(second.ttftMs);
    assertGenerated(second, 'turn 2');
    figures.turns++;
    figures.cachedShareOfSecondPrompt = assertCachedShare(second.usage, first.usage, 'turn 2');
    const delta = requestDelta(before, await scrapeMetrics(flint.url));
    t.diagnostic(`flint requests: ${JSON.stringify(delta)}`);
    assert.equal(delta[`${api[kind]}/200/ok`], 2, JSON.stringify(delta));
  });

  const toolChoice = kind === 'chat' ? { type: 'tool', toolName: 'get_weather' } : 'required';
  test(`${label}: forced tool call (toolChoice ${JSON.stringify(toolChoice)}) round-trips`, { timeout: 120_000 }, async (t) => {
    const before = await scrapeMetrics(flint.url);
    const messages: Message[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const tools = { get_weather: weatherTool };
    const first = await withDeadline('forced call', turnTimeoutMs, (abortSignal) => ai.generateText({ model: model(), messages, tools, toolChoice, maxOutputTokens: 64, abortSignal, maxRetries: 0 }));
    assert.equal(first.finishReason, 'tool-calls', `finishReason ${first.finishReason}; text ${JSON.stringify(first.text)}`);
    assert.equal(first.toolCalls.length, 1, JSON.stringify(first.toolCalls));
    const call = first.toolCalls[0];
    assert.equal(call.toolName, 'get_weather');
    assert.equal(typeof call.input.city, 'string', JSON.stringify(call.input));
    messages.push(...first.response.messages, {
      role: 'tool',
      content: [{ type: 'tool-result', toolCallId: call.toolCallId, toolName: call.toolName, output: { type: 'json', value: { city: call.input.city, celsius: 21 } } }],
    });
    const second = await withDeadline('after the call', turnTimeoutMs, (abortSignal) => ai.generateText({ model: model(), messages, tools, maxOutputTokens: 16, abortSignal, maxRetries: 0 }));
    assertGenerated(second, 'after the call');
    t.diagnostic(`call prompt ${first.usage.inputTokens} tokens; follow-up ${second.usage.inputTokens} tokens, ${second.usage.inputTokenDetails?.cacheReadTokens ?? 0} cached; finish ${second.finishReason}`);
    assertCachedShare(second.usage, first.usage, 'follow-up after the call');
    const delta = requestDelta(before, await scrapeMetrics(flint.url));
    assert.equal(delta[`${api[kind]}/200/ok`], 2, JSON.stringify(delta));
  });
}

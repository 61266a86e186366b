/**
 * The real Codex CLI (@openai/codex, pinned in scripts/installClients.ts) against a spawned
 * Flint on the tiny model: three turns (`codex exec`, then `codex exec resume --last` twice) over HTTP
 * SSE and over the Responses WebSocket mode. A loopback proxy records what Codex sends; the
 * first turn of each transport is saved (sanitized) under fixtures/ when missing or when
 * FLINT_UPDATE_FIXTURES=1. Asserts on exit status, request counts and cached tokens, never on text.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CodexSession, describeRun, type CodexRun } from './codexRunner.js';
import { startLoggingProxy, summarizeExchanges, type LoggingProxy, type RecordedExchange } from './loggingProxy.js';
import { sanitizeExchange } from './sanitize.js';
import { valueOf } from '../helpers/promText.js';
import { clientVersion, fixturesDir, Report, requestDelta, scrapeMetrics, startFlint, type Flint } from './support.js';

const report = new Report('codex');
const requestLog: unknown[] = [];
let flint: Flint;

before(async () => {
  flint = await startFlint({ contextSize: 16384, defaultMaxTokens: 128 });
});

after(async () => {
  report.write(requestLog);
  await flint?.stop();
});

/** Generating requests a transport carried: HTTP POSTs to /v1/responses, or WebSocket `response.create` frames. */
function responseCreates(exchanges: RecordedExchange[]): Array<{ exchange: RecordedExchange; body: Record<string, unknown> }> {
  const out: Array<{ exchange: RecordedExchange; body: Record<string, unknown> }> = [];
  for (const e of exchanges) {
    if (e.kind === 'http' && e.method === 'POST' && e.path.startsWith('/v1/responses')) out.push({ exchange: e, body: e.body as Record<string, unknown> });
    for (const m of e.clientMessages) if ((m as { type?: string }).type === 'response.create') out.push({ exchange: e, body: m as Record<string, unknown> });
  }
  return out;
}

function assertTurnCompleted(run: CodexRun, label: string, flint: Flint, proxy: LoggingProxy): void {
  const context = () =>
    `${label}: ${describeRun(run)}\nrequests: ${JSON.stringify(proxy.exchanges.map((e) => ({ kind: e.kind, path: e.path, status: e.status, responses: e.responses, serverErrors: e.serverErrors, closed: e.closed, refusal: e.status !== 200 && e.status !== 101 ? e.responseText?.slice(0, 600) : undefined })))}\nflint log tail: ${flint.logs().slice(-3000)}`;
  assert.equal(run.code, 0, context());
  assert.ok(run.events.some((e) => e.type === 'turn.completed'), `no turn.completed; ${context()}`);
  assert.ok(!run.events.some((e) => e.type === 'turn.failed'), `turn.failed; ${context()}`);
}

function saveFixture(name: string, fixture: unknown): void {
  const file = path.join(fixturesDir, name);
  if (existsSync(file) && process.env.FLINT_UPDATE_FIXTURES !== '1') return;
  mkdirSync(fixturesDir, { recursive: true });
  writeFileSync(file, JSON.stringify(fixture, null, 2) + '\n');
}

/** Saves what the first turn sent (see the file comment). */
function saveFirstTurnFixture(transport: 'http' | 'websocket', codex: CodexSession, proxy: LoggingProxy): void {
  const first = proxy.exchanges.find((e) => (transport === 'http' ? e.kind === 'http' && e.method === 'POST' : e.kind === 'websocket'));
  if (!first) return;
  const fixture = sanitizeExchange(first, {
    client: `@openai/codex ${String(first.headers['user-agent']).match(/codex_exec\/([\d.]+)/)?.[1] ?? '?'}`,
    description:
      transport === 'http'
        ? 'First request of `codex exec "say hi"` (Codex CLI, wire_api = "responses", supports_websockets = false, --output-schema), as recorded by test/clients/codex.clients.ts.'
        : 'WebSocket handshake and client frames of the first turn of `codex exec "say hi"` (supports_websockets = true, --output-schema), as recorded by test/clients/codex.clients.ts.',
    messages: transport === 'websocket' ? first.clientMessages : undefined,
    replacePaths: { [codex.home]: '/tmp/codex-home', [codex.work]: '/tmp/codex-work' },
  });
  saveFixture(transport === 'http' ? 'codex-http-first-turn.json' : 'codex-ws-first-turn.json', fixture);
}

/**
 * Three turns of `codex exec` (then `resume --last` twice) against `server` over `transport`:
 * every turn completes, every request Codex sent finished ok on the server, and each turn's
 * prompt comes from the KV cache of the previous one.
 */
async function threeTurns(t: TestContext, server: Flint, transport: 'http' | 'websocket', label: string): Promise<void> {
  const figures = report.entry(`@openai/codex ${clientVersion('@openai/codex')}`, label);
  const proxy = await startLoggingProxy(server.url);
  const codex = new CodexSession(`${proxy.url}/v1`, server.modelId, transport === 'websocket');
  t.after(async () => {
    requestLog.push(...(summarizeExchanges(proxy.exchanges) as unknown[]).map((e) => ({ transport, ...(e as object) })));
    codex.cleanup();
    await proxy.close();
  });
  const before = await scrapeMetrics(server.url);

  const prompts = ['say hi', 'say hi again', 'and once more'];
  /** Usage of each turn's generating response (the last one Codex waited for). */
  const turnUsage: NonNullable<RecordedExchange['responses'][number]['usage']>[] = [];
  let seen = 0;
  for (const [i, prompt] of prompts.entries()) {
    const run = await codex.run(prompt, { resume: i > 0 });
    figures.turnMs.push(run.ms);
    if (i === 0) saveFirstTurnFixture(transport, codex, proxy);
    assertTurnCompleted(run, `turn ${i + 1}`, server, proxy);
    figures.turns++;
    const terminals = proxy.exchanges.flatMap((e) => e.responses);
    const generated = terminals.slice(seen).filter((r) => r.outputTypes.length > 0 && r.usage);
    seen = terminals.length;
    assert.ok(generated.length > 0, `turn ${i + 1}: no generating response among ${JSON.stringify(terminals)}`);
    turnUsage.push(generated.at(-1)!.usage!);
  }

  const creates = responseCreates(proxy.exchanges);
  const generating = creates.filter((c) => c.body.generate !== false);
  for (const c of creates) {
    const input = Array.isArray(c.body.input) ? (c.body.input as Array<{ type?: string; role?: string }>) : [];
    t.diagnostic(
      `request: generate=${c.body.generate ?? '(unset)'} previous_response_id=${c.body.previous_response_id ? 'yes' : 'no'} input=[${input.map((i) => (i.type === 'message' ? `message:${i.role}` : i.type)).join(',')}] tools=${(c.body.tools as unknown[] | undefined)?.length ?? 0} text.format=${(c.body.text as { format?: { type?: string } } | undefined)?.format?.type ?? '-'}`,
    );
  }
  figures.ttftMs.push(...proxy.exchanges.flatMap((e) => e.firstDeltaMs));
  const histogram: Record<string, number> = {};
  for (const type of proxy.exchanges.flatMap((e) => e.serverEventTypes)) histogram[type] = (histogram[type] ?? 0) + 1;
  t.diagnostic(`server events over all turns: ${JSON.stringify(histogram)}`);
  const after = await scrapeMetrics(server.url);
  const delta = requestDelta(before, after);
  t.diagnostic(`flint requests: ${JSON.stringify(delta)}; response.create/POSTs: ${creates.length} (${creates.length - generating.length} with generate:false)`);

  // Every request Codex sent was served and finished ok; nothing failed or was refused.
  const api = transport === 'http' ? 'responses' : 'responses_ws';
  const served = Object.entries(delta).filter(([k]) => k.startsWith(`${api}/`));
  assert.deepEqual(
    served.filter(([k]) => !k.endsWith('/ok')),
    [],
    `requests that did not finish ok: ${JSON.stringify(delta)}; exchanges: ${JSON.stringify(proxy.exchanges.map((e) => ({ path: e.path, status: e.status, responses: e.responses, errors: e.serverErrors })))}`,
  );
  assert.equal(served.reduce((s, [, n]) => s + n, 0), creates.length, `flint_requests_total{api="${api}"} grew by ${JSON.stringify(delta)}, Codex sent ${creates.length}`);
  if (transport === 'websocket') assert.ok(proxy.exchanges.some((e) => e.kind === 'websocket' && e.status === 101), 'Codex never opened a WebSocket');
  else assert.ok(!proxy.exchanges.some((e) => e.kind === 'websocket'), 'Codex opened a WebSocket with supports_websockets = false');

  // Cached tokens: each turn resends the previous turn's whole prompt (store: false), which must come from the KV cache.
  t.diagnostic(`usage per turn: ${JSON.stringify(turnUsage.map((u) => ({ input: u.input_tokens, cached: u.input_tokens_details?.cached_tokens ?? 0, output: u.output_tokens })))}`);
  figures.firstPromptTokens = turnUsage[0].input_tokens;
  for (let i = 1; i < turnUsage.length; i++) {
    const cached = turnUsage[i].input_tokens_details?.cached_tokens ?? 0;
    if (i === 1) figures.cachedShareOfSecondPrompt = cached / turnUsage[0].input_tokens;
    assert.ok(cached >= 0.9 * turnUsage[i - 1].input_tokens, `turn ${i + 1} cached ${cached} of turn ${i}'s ${turnUsage[i - 1].input_tokens} input tokens`);
  }

  figures.notes.push(`${creates.length} requests (${creates.length - generating.length} generate:false prewarm)`);
}

for (const transport of ['http', 'websocket'] as const) {
  test(`codex exec: three turns over ${transport === 'http' ? 'HTTP SSE' : 'the Responses WebSocket'}`, { timeout: 300_000 }, (t) => threeTurns(t, flint, transport, transport));
}

test('codex exec through a Flint front (engine.workers: 0) over the Responses WebSocket: the member serves, the front keeps the session', { timeout: 300_000 }, async (t) => {
  const front = await startFlint({ env: { FLINT_WORKERS: '0' }, config: `upstreams:\n  - { name: member, url: "${flint.url}", kind: flint, slots: 2 }\n` });
  t.after(() => front.stop());
  await threeTurns(t, front, 'websocket', 'websocket through a front');
});

test('codex exec with Flint as its OpenAI provider: auto-compaction runs on the server and the session goes on', { timeout: 300_000 }, async (t) => {
  const big = await startFlint({ contextSize: 32768, defaultMaxTokens: 128 });
  t.after(() => big.stop());
  const figures = report.entry(`@openai/codex ${clientVersion('@openai/codex')}`, 'openai provider, server compaction');
  const proxy = await startLoggingProxy(big.url);
  // Codex's first prompt is ~14.4k tokens: past this limit the next turn compacts first.
  const codex = new CodexSession(`${proxy.url}/v1`, big.modelId, true, 14_420);
  t.after(async () => {
    codex.cleanup();
    await proxy.close();
  });
  const before = await scrapeMetrics(big.url);
  for (const [i, prompt] of ['say hi', 'say hi again', 'and once more'].entries()) {
    const run = await codex.run(prompt, { resume: i > 0 });
    figures.turnMs.push(run.ms);
    assertTurnCompleted(run, `turn ${i + 1}`, big, proxy);
    figures.turns++;
  }
  const after = await scrapeMetrics(big.url);
  const compactions = valueOf(after, 'flint_compactions_total') - valueOf(before, 'flint_compactions_total');
  const creates = responseCreates(proxy.exchanges);
  const triggers = creates.filter((c) => Array.isArray(c.body.input) && (c.body.input as Array<{ type?: string }>).some((item) => item.type === 'compaction_trigger')).length;
  const compactCalls = proxy.exchanges.filter((e) => e.kind === 'http' && e.path.startsWith('/v1/responses/compact')).length;
  t.diagnostic(`compactions on the server: ${compactions}; compaction_trigger requests: ${triggers}; /v1/responses/compact calls: ${compactCalls}; requests: ${JSON.stringify(requestDelta(before, after))}`);
  figures.notes.push(`${compactions} server compactions (${triggers} compaction_trigger, ${compactCalls} /responses/compact)`);
  assert.ok(compactions >= 1, 'Codex never had Flint compact the conversation');
  assert.equal(compactions, triggers + compactCalls);
  // After compaction Codex sends the sealed compaction item back; Flint renders it (a request that could not open it would still pass, so check the item travelled).
  assert.ok(creates.some((c) => Array.isArray(c.body.input) && (c.body.input as Array<{ type?: string }>).some((item) => item.type === 'compaction')), 'no later request carried the compaction item');
});

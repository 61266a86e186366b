/**
 * Claude Code itself (`@anthropic-ai/claude-code`, pinned in scripts/installClients.ts) in
 * non-interactive mode against a spawned Flint with an API key, through the logging proxy: a
 * first turn (`claude -p`), then a second in the same session (`claude -p --continue`).
 *
 * The server runs the `tiny-chat` model, whose answers end by themselves: Claude Code asks for
 * more after a `max_tokens` stop and fails the turn after a few, so a model that never ends
 * (tiny) cannot complete one. Nonessential traffic is disabled and every address other than
 * loopback goes to a closed port. Asserts on exit status, the result Claude Code prints,
 * what Flint answered each request and the cached share of the second turn, never on text.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startLoggingProxy, summarizeExchanges, type LoggingProxy, type RecordedExchange } from './loggingProxy.js';
import { clientsDir, clientVersion, Report, runProcess, startFlint, tempDir, type Flint, type ProcessRun } from './support.js';

const report = new Report('claude-code');
const apiKey = 'sk-ant-flint-claude-code';
let flint: Flint;
let proxy: LoggingProxy;
const home = tempDir('claude-home-');
const work = tempDir('claude-work-');

before(async () => {
  // Claude Code's system prompt and tools are about 19k tokens on the tiny models' vocabulary.
  flint = await startFlint({ preset: 'tiny-chat', contextSize: 32768, env: { FLINT_API_KEYS: apiKey } });
  proxy = await startLoggingProxy(flint.url, { maxResponseChars: 2_000_000 });
});

after(async () => {
  report.write(summarizeExchanges(proxy?.exchanges ?? []));
  await proxy?.close();
  await flint?.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** The native binary that `@anthropic-ai/claude-code`'s postinstall puts in place of its launcher. */
function claudeExecutable(): string {
  const file = path.join(clientsDir, 'node_modules', '@anthropic-ai', 'claude-code', 'bin', 'claude.exe');
  if (!existsSync(file)) throw new Error(`${file} is missing: run node --import tsx scripts/installClients.ts`);
  return file;
}

interface ClaudeRun extends ProcessRun {
  /** The `--output-format json` result, when stdout held one. */
  readonly result?: { type: string; subtype: string; is_error: boolean; num_turns: number; session_id: string; result?: string; usage?: Record<string, number> };
}

async function runClaude(args: string[], timeoutMs = 240_000): Promise<ClaudeRun> {
  const env: NodeJS.ProcessEnv = {};
  // Nothing of the caller's Anthropic or Claude settings, nor its proxies.
  for (const [k, v] of Object.entries(process.env)) if (!/^(ANTHROPIC_|CLAUDE_|FLINT_)/.test(k) && !/_proxy$/i.test(k)) env[k] = v;
  Object.assign(env, {
    HOME: home,
    CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
    ANTHROPIC_BASE_URL: proxy.url,
    ANTHROPIC_API_KEY: apiKey,
    // Every model Claude Code picks (main loop, background tasks) is Flint's.
    ANTHROPIC_MODEL: flint.modelId,
    ANTHROPIC_DEFAULT_OPUS_MODEL: flint.modelId,
    ANTHROPIC_DEFAULT_SONNET_MODEL: flint.modelId,
    ANTHROPIC_DEFAULT_HAIKU_MODEL: flint.modelId,
    ANTHROPIC_SMALL_FAST_MODEL: flint.modelId,
    // Without it Claude Code also sends the key to api.anthropic.com (metrics, feature flags).
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    NO_COLOR: '1',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '127.0.0.1,localhost',
  });
  mkdirSync(path.join(home, '.claude'), { recursive: true });
  const run = await runProcess(claudeExecutable(), ['-p', ...args, '--output-format', 'json'], { cwd: work, env, timeoutMs });
  let result: ClaudeRun['result'];
  try {
    result = JSON.parse(run.stdout.trim().split('\n').pop() ?? '');
  } catch {
    result = undefined;
  }
  return { ...run, result };
}

/** The SSE events of one streamed Messages answer, parsed. */
function sseEvents(exchange: RecordedExchange): Array<{ event: string; data: any }> {
  const out: Array<{ event: string; data: any }> = [];
  for (const block of (exchange.responseText ?? '').split(/\r?\n\r?\n/)) {
    const event = /^event: ?(.*)$/m.exec(block)?.[1];
    const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
    if (event && data) out.push({ event, data: JSON.parse(data) });
  }
  return out;
}

interface MessagesAnswer {
  exchange: RecordedExchange;
  /** The request carried Claude Code's tools: a main-loop turn rather than a background task. */
  main: boolean;
  stopReason: string | undefined;
  inputTokens: number;
  cacheRead: number;
  events: string[];
}

/** Every POST /v1/messages from `from` on, with what Flint answered. */
function messagesAnswers(from: number): MessagesAnswer[] {
  return proxy.exchanges.slice(from).filter((e) => e.method === 'POST' && e.path.startsWith('/v1/messages') && !e.path.startsWith('/v1/messages/count_tokens')).map((exchange) => {
    const body = exchange.body as { tools?: unknown[]; stream?: boolean };
    let stopReason: string | undefined;
    let inputTokens = 0;
    let cacheRead = 0;
    let events: string[] = [];
    if (body.stream) {
      const parsed = sseEvents(exchange);
      events = parsed.map((e) => e.event);
      const usage = parsed.find((e) => e.event === 'message_start')?.data.message.usage;
      inputTokens = usage?.input_tokens ?? 0;
      cacheRead = usage?.cache_read_input_tokens ?? 0;
      stopReason = parsed.find((e) => e.event === 'message_delta')?.data.delta.stop_reason;
    } else {
      const json = JSON.parse(exchange.responseText ?? '{}');
      stopReason = json.stop_reason;
      inputTokens = json.usage?.input_tokens ?? 0;
      cacheRead = json.usage?.cache_read_input_tokens ?? 0;
    }
    return { exchange, main: Array.isArray(body.tools) && body.tools.length > 0, stopReason, inputTokens, cacheRead, events };
  });
}

function describe(run: ClaudeRun, answers: MessagesAnswer[]): string {
  return `exit=${run.code ?? run.signal} after ${run.ms} ms; result=${JSON.stringify(run.result)?.slice(0, 1500)}; stderr tail=${run.stderr.slice(-1500)}\nrequests: ${JSON.stringify(answers.map((a) => ({ path: a.exchange.path, status: a.exchange.status, main: a.main, stop: a.stopReason, input: a.inputTokens, cached: a.cacheRead, events: a.events.length, error: a.exchange.status !== 200 ? a.exchange.responseText?.slice(0, 400) : undefined })))}\nflint log tail: ${flint.logs().slice(-2500)}`;
}

/** Claude Code completed the turn: exit 0, a successful result, and every request it sent got a whole answer. */
function assertTurnCompleted(run: ClaudeRun, answers: MessagesAnswer[]): void {
  const context = () => describe(run, answers);
  assert.equal(run.code, 0, context());
  assert.equal(run.result?.type, 'result', context());
  assert.equal(run.result?.subtype, 'success', context());
  assert.equal(run.result?.is_error, false, context());
  assert.ok(answers.some((a) => a.main), `no main-loop request; ${context()}`);
  for (const a of answers) {
    assert.equal(a.exchange.status, 200, context());
    if ((a.exchange.body as { stream?: boolean }).stream) {
      assert.equal(a.events[0], 'message_start', context());
      assert.equal(a.events.at(-1), 'message_stop', context());
    }
  }
  // the main loop's last answer ended the turn by itself
  assert.equal(answers.filter((a) => a.main).at(-1)!.stopReason, 'end_turn', context());
}

test('Claude Code: claude -p completes a turn, and --continue reads the conversation from the cache', async () => {
  const version = clientVersion('@anthropic-ai/claude-code');
  const entry = report.entry(`@anthropic-ai/claude-code ${version}`, 'messages (claude -p, then --continue)');

  const firstFrom = proxy.exchanges.length;
  const first = await runClaude(['Say hi.']);
  const firstAnswers = messagesAnswers(firstFrom);
  assertTurnCompleted(first, firstAnswers);
  entry.turns++;
  entry.turnMs.push(first.ms);
  const firstMain = firstAnswers.filter((a) => a.main).at(-1)!;
  entry.firstPromptTokens = firstMain.inputTokens + firstMain.cacheRead;
  for (const a of firstAnswers) if (a.exchange.firstDeltaMs[0] !== undefined) entry.ttftMs.push(a.exchange.firstDeltaMs[0]);

  entry.notes.push(`first run: ${firstAnswers.length} requests (${firstAnswers.filter((a) => a.main).length} main-loop)`);

  const secondFrom = proxy.exchanges.length;
  const second = await runClaude(['--continue', 'And again.']);
  const secondAnswers = messagesAnswers(secondFrom);
  assertTurnCompleted(second, secondAnswers);
  entry.turns++;
  entry.turnMs.push(second.ms);
  assert.equal(second.result!.session_id, first.result!.session_id, 'the second run continued the first session');
  for (const a of secondAnswers) if (a.exchange.firstDeltaMs[0] !== undefined) entry.ttftMs.push(a.exchange.firstDeltaMs[0]);
  entry.notes.push(`second run: ${secondAnswers.length} requests (${secondAnswers.filter((a) => a.main).length} main-loop)`);

  // The second turn's main request repeats the first's system prompt, tools and messages, then adds the
  // first answer and the new prompt: all but the new tail comes from the cache (the attribution block,
  // which changes per request, is kept out of the prompt by anthropic.dropAttributionBlock).
  const secondMain = secondAnswers.filter((a) => a.main)[0]!;
  const secondPrompt = secondMain.inputTokens + secondMain.cacheRead;
  assert.ok(secondPrompt > entry.firstPromptTokens, describe(second, secondAnswers));
  entry.cachedShareOfSecondPrompt = secondMain.cacheRead / secondPrompt;
  assert.ok(entry.cachedShareOfSecondPrompt >= 0.9, `second turn read ${secondMain.cacheRead} of ${secondPrompt} prompt tokens from the cache; ${describe(second, secondAnswers)}`);
});

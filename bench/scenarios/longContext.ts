/**
 * A warm turn at the context sizes Spark-style agents reach: a 20-odd-turn agent conversation of
 * about 72k tokens, fully in the KV cache, then a few more turns. Per turn:
 *
 *   ws continue   Responses WebSocket, previous_response_id + one short user message
 *   raw continue  the same conversation on the raw engine (only the new tokens evaluated)
 *   chat repeat   POST /v1/chat/completions with the whole conversation of that turn again
 *                 (fully cached: Flint must parse and match the whole history)
 *   raw repeat    the same conversation again on the raw engine (one token evaluated)
 *
 * One token is generated per request, so TTFT is the whole cost. Goals: WebSocket continue within
 * 10 ms of raw continue; chat repeat within 50 ms of raw repeat. Flint has one slot, so the
 * WebSocket conversation and the chat repeats share it (the repeat's prompt is the WebSocket
 * turn's prompt). The context of this scenario is its own (the tokens it needs plus headroom),
 * not `--context`; it is skipped when the raw engine's prefill times of 1k and 4k tokens, fitted
 * to a·n + b·n², say the two cold prompts would not fit the time limit.
 */
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { AgentConversation, userHistory } from '../lib/conversation.js';
import { nonce, textOfTokens } from '../lib/prompts.js';
import { rawGenerate } from '../lib/rawEngine.js';
import { goal, num, table } from '../lib/report.js';
import { ResponsesSocket, probeResponsesSocket } from '../lib/responsesClient.js';
import { finished } from '../lib/result.js';
import { summarize } from '../lib/stats.js';
import { ttftMs } from '../lib/turn.js';
import { skipped, type BenchContext, type Scenario, type ScenarioResult } from '../lib/types.js';
import type { ChatHistoryItem } from 'node-llama-cpp';

const targetTokens = 72_000;
const contextSize = 81_920;
const toolOutputChars = 4_000;
const requestTimeoutMs = 600_000;

interface TurnSample {
  readonly turn: number;
  readonly promptTokens: number;
  readonly wsContinueMs: number;
  readonly wsCached: number;
  readonly rawContinueMs: number;
  readonly chatRepeatMs: number;
  readonly chatCached: number;
  readonly rawRepeatMs: number;
  readonly rawRenderMs: number;
}

export const longContextScenario: Scenario = {
  name: 'long-context',
  title: 'Warm turn at 72k tokens',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const turns = ctx.runs(5, 10);
    // Prefill time of 1k- and 4k-token prompts, fitted to t = a·n + b·n² (attention grows with the context):
    // is the cold 72k prompt affordable within the time limit?
    const probeContext = await raw.createContext(8192, 1);
    let estimateS: number;
    try {
      const times: Array<{ n: number; ms: number }> = [];
      const probeSequence = probeContext.getSequence();
      for (const n of [1024, 4096]) {
        const probe = await rawGenerate(raw, probeSequence, userHistory(textOfTokens(nonce(), n, raw.tokenizer)), { maxTokens: 1, reuse: false });
        times.push({ n: probe.promptTokens, ms: probe.engineTtftMs });
      }
      const [p, q] = times;
      const b = Math.max(0, (q.ms / q.n - p.ms / p.n) / (q.n - p.n));
      const a = Math.max(0, p.ms / p.n - b * p.n);
      estimateS = (a * targetTokens + b * targetTokens * targetTokens) / 1000;
    } finally {
      await probeContext.dispose();
    }
    // Two cold prompts (raw and Flint) cannot be interrupted: together, with a margin, they must fit the time limit.
    const budgetS = ctx.options.scenarioTimeLimitS / 2.4;
    if (estimateS > budgetS) return skipped(this, `a cold ${targetTokens}-token prompt would take about ${Math.round(estimateS)} s per side on this model (the time limit allows ${Math.round(budgetS)} s)`);

    const conversation = new AgentConversation(`${nonce()} Long task.`, toolOutputChars);
    while (raw.render(conversation.rawHistory()).length < targetTokens) conversation.addTurn('Looking at the next file now.');
    const baseChat = conversation.chatMessages();
    const baseRaw = conversation.rawHistory().slice(0, -1);
    const extraChat: unknown[] = [];
    const extraRaw: ChatHistoryItem[] = [];
    const rawHistory = () => [...baseRaw, ...extraRaw, { type: 'model', response: [] } as ChatHistoryItem];
    const chatMessages = () => [...baseChat, ...extraChat];

    const server = await ctx.startFlint({ contextSize, slots: 1 });
    const context = await raw.createContext(contextSize, 1);
    const sequence = context.getSequence();
    const samples: TurnSample[] = [];
    let stoppedEarly = false;
    let socket: ResponsesSocket | undefined;
    try {
      const probe = await probeResponsesSocket(server.url);
      if (!probe.ok) return skipped(this, `no Responses WebSocket (${probe.reason})`);
      socket = await ResponsesSocket.connect(server.url, 10_000);
      ctx.log(`long-context: cold prompt of ${raw.render(rawHistory()).length} tokens on both sides (estimated ${Math.round(estimateS)} s each)`);
      const cold = await socket.create({ ...conversation.responsesFull(), max_output_tokens: 1 }, requestTimeoutMs);
      await rawGenerate(raw, sequence, rawHistory(), { maxTokens: 1, reuse: true });
      let previousId = cold.responseId;
      let previousText = cold.text;
      for (let turn = 1; turn <= turns; turn++) {
        if (deadline.expired) {
          stoppedEarly = true;
          break;
        }
        const user = `Turn ${turn}: the test still fails with the same error; look at the slot table again.`;
        if (previousText) {
          extraChat.push({ role: 'assistant', content: previousText });
          extraRaw.push({ type: 'model', response: [previousText] });
        }
        extraChat.push({ role: 'user', content: user });
        extraRaw.push({ type: 'user', text: user });
        const ws = await socket.create({ instructions: conversation.system, previous_response_id: previousId, input: [{ type: 'message', role: 'user', content: user }], max_output_tokens: 1 }, requestTimeoutMs);
        const rawContinue = await rawGenerate(raw, sequence, rawHistory(), { maxTokens: 1, reuse: true });
        const chat = await streamChat(server.url, { messages: chatMessages(), max_tokens: 1 }, requestTimeoutMs);
        const rawRepeat = await rawGenerate(raw, sequence, rawHistory(), { maxTokens: 1, reuse: true });
        previousId = ws.responseId;
        previousText = ws.text;
        samples.push({
          turn,
          promptTokens: rawContinue.promptTokens,
          wsContinueMs: ttftMs(ws),
          wsCached: ws.usage?.cachedTokens ?? Number.NaN,
          rawContinueMs: rawContinue.engineTtftMs,
          chatRepeatMs: ttftMs(chat),
          chatCached: chat.usage?.cachedTokens ?? Number.NaN,
          rawRepeatMs: rawRepeat.engineTtftMs,
          rawRenderMs: rawRepeat.renderMs,
        });
        const s = samples.at(-1)!;
        ctx.log(`long-context turn ${turn}/${turns} (${s.promptTokens} tokens): ws ${num(s.wsContinueMs, 2)} vs raw ${num(s.rawContinueMs, 2)} ms; chat repeat ${num(s.chatRepeatMs, 2)} vs raw ${num(s.rawRepeatMs, 2)} ms`);
      }
    } finally {
      socket?.close();
      await server.close();
      await context.dispose();
    }
    const median = (f: (s: TurnSample) => number) => summarize(samples.map(f)).median;
    const wsOverhead = median((s) => s.wsContinueMs - s.rawContinueMs);
    const chatOverhead = median((s) => s.chatRepeatMs - s.rawRepeatMs);
    const markdown = [
      `${samples.length} turn(s) on a ${num(samples[0]?.promptTokens, 0)}-token agent conversation (context ${contextSize}, one Flint slot, one token per request). ` +
        'Overhead = Flint TTFT - raw engine TTFT of the same turn (raw without rendering; "raw render" is that cost).',
      '',
      table(
        ['turn', 'prompt', 'ws continue ms', 'ws cached', 'raw continue ms', 'ws overhead ms', 'chat repeat ms', 'chat cached', 'raw repeat ms', 'chat overhead ms', 'raw render ms'],
        samples.map((s) => [
          String(s.turn),
          String(s.promptTokens),
          num(s.wsContinueMs, 2),
          num(s.wsCached, 0),
          num(s.rawContinueMs, 2),
          num(s.wsContinueMs - s.rawContinueMs, 2),
          num(s.chatRepeatMs, 2),
          num(s.chatCached, 0),
          num(s.rawRepeatMs, 2),
          num(s.chatRepeatMs - s.rawRepeatMs, 2),
          num(s.rawRenderMs, 2),
        ]),
      ),
      '',
      `Median overhead: WebSocket continue ${num(wsOverhead, 2)} ms, chat repeat ${num(chatOverhead, 2)} ms.`,
    ].join('\n');
    return finished(this, stoppedEarly, {
      settings: { targetTokens, contextSize, turns, toolOutputChars },
      samples,
      stats: { wsOverheadMs: wsOverhead, chatOverheadMs: chatOverhead },
      markdown,
      goals: [
        goal(this.name, 'ws: fully cached turn at 72k, overhead vs raw', wsOverhead, '<=', 10, ' ms'),
        goal(this.name, 'chat: repeated 72k conversation, overhead vs raw', chatOverhead, '<=', 50, ' ms'),
      ],
    });
  },
};

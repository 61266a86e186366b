/**
 * Single-stream decode: tokens per second between the first and the last token, and TTFT, of
 * one greedy generation. Raw = `sequence.evaluate` with a detokenize per token; gateway = Chat
 * Completions over SSE, timed from the chunks. The ratio gateway/raw shows what the gateway
 * costs per token (goal >= 0.98).
 */
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { userHistory, userMessages } from '../lib/conversation.js';
import { nonce, textOfTokens } from '../lib/prompts.js';
import { decodeRate, streamDecodeRate, ttftMs } from '../lib/turn.js';
import { rawGenerate } from '../lib/rawEngine.js';
import { goal, med, num, table, times } from '../lib/report.js';
import { ratio, summarize } from '../lib/stats.js';
import type { BenchContext, Scenario, ScenarioResult } from '../lib/types.js';
import { finished } from '../lib/result.js';

const promptTokens = 64;
const requestTimeoutMs = 300_000;

interface Sample {
  readonly side: 'raw' | 'gateway';
  readonly run: number;
  readonly ttftMs: number;
  /** Raw only: rendering the chat template and tokenizing, not in its TTFT. */
  readonly renderMs: number;
  readonly tokPerS: number;
  readonly tokens: number;
}

export const decodeScenario: Scenario = {
  name: 'decode',
  title: 'Single-stream decode',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const runs = ctx.runs(8, 12);
    const maxTokens = ctx.options.tokens;
    const contextSize = ctx.contextFor(Math.max(1024, promptTokens + maxTokens + 64));
    const server = await ctx.startFlint({ contextSize, slots: 1 });
    const context = await raw.createContext(contextSize, 1);
    const sequence = context.getSequence();
    const samples: Sample[] = [];
    let stoppedEarly = false;
    try {
      // One short generation per side first: the first evaluation allocates compute buffers.
      await rawGenerate(raw, sequence, userHistory(textOfTokens(nonce(), promptTokens, raw.tokenizer)), { maxTokens: 8, reuse: false });
      await streamChat(server.url, { messages: userMessages(textOfTokens(nonce(), promptTokens, raw.tokenizer)), max_tokens: 8 }, requestTimeoutMs);
      for (let run = 0; run < runs; run++) {
        if (deadline.expired) {
          stoppedEarly = true;
          break;
        }
        const measure = async (side: Sample['side']) => {
          if (side === 'raw') {
            const r = await rawGenerate(raw, sequence, userHistory(textOfTokens(nonce(), promptTokens, raw.tokenizer)), { maxTokens, reuse: false });
            samples.push({ side, run, ttftMs: r.engineTtftMs, renderMs: r.renderMs, tokPerS: decodeRate(r.completionTokens, r.firstTokenAt, r.tokenTimes.at(-1)), tokens: r.completionTokens });
          } else {
            const g = await streamChat(server.url, { messages: userMessages(textOfTokens(nonce(), promptTokens, raw.tokenizer)), max_tokens: maxTokens }, requestTimeoutMs);
            samples.push({ side, run, ttftMs: ttftMs(g), renderMs: NaN, tokPerS: streamDecodeRate(g), tokens: g.usage?.completionTokens ?? 0 });
          }
        };
        // The side that goes first alternates, so neither always follows the other's work.
        for (const side of run % 2 === 0 ? (['raw', 'gateway'] as const) : (['gateway', 'raw'] as const)) await measure(side);
        const [rawSample, gatewaySample] = [samples.find((s) => s.run === run && s.side === 'raw')!, samples.find((s) => s.run === run && s.side === 'gateway')!];
        ctx.log(`decode run ${run + 1}/${runs}: raw ${num(rawSample.tokPerS)} tok/s, gateway ${num(gatewaySample.tokPerS)} tok/s`);
      }
    } finally {
      await server.close();
      await context.dispose();
    }
    const of = (side: Sample['side'], key: 'ttftMs' | 'renderMs' | 'tokPerS' | 'tokens') => summarize(samples.filter((s) => s.side === side).map((s) => s[key]));
    const stats = {
      raw: { ttftMs: of('raw', 'ttftMs'), renderMs: of('raw', 'renderMs'), tokPerS: of('raw', 'tokPerS'), tokens: of('raw', 'tokens') },
      gateway: { ttftMs: of('gateway', 'ttftMs'), tokPerS: of('gateway', 'tokPerS'), tokens: of('gateway', 'tokens') },
    };
    const decodeRatio = ratio(stats.gateway.tokPerS.median, stats.raw.tokPerS.median);
    const ttftRatio = ratio(stats.gateway.ttftMs.median, stats.raw.ttftMs.median);
    const markdown = [
      `${samples.length / 2} interleaved runs, ${promptTokens}-token prompts (new each run), up to ${maxTokens} tokens, temperature 0; median (min–max). ` +
        `Raw TTFT is the engine's own (prefill and first decode); rendering the chat template took another ${num(stats.raw.renderMs.median, 2)} ms there.`,
      '',
      table(
        ['path', 'TTFT ms', 'decode tok/s', 'tokens'],
        [
          ['node-llama-cpp direct', med(stats.raw.ttftMs, 2), med(stats.raw.tokPerS), med(stats.raw.tokens, 0)],
          ['Flint chat completions (SSE)', med(stats.gateway.ttftMs, 2), med(stats.gateway.tokPerS), med(stats.gateway.tokens, 0)],
          ['ratio gateway/raw', times(ttftRatio, 2), times(decodeRatio), ''],
        ],
      ),
    ].join('\n');
    return finished(this, stoppedEarly, {
      settings: { promptTokens, maxTokens, runs, contextSize },
      samples,
      stats: { ...stats, decodeRatio, ttftRatio },
      markdown,
      goals: [goal(this.name, 'decode tok/s gateway/raw', decodeRatio, '>=', 0.98)],
    });
  },
};

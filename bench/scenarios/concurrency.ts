/**
 * Concurrent streams: 1, 2, 4 and 8 greedy generations at once. Flint gets as many slots as
 * streams (one worker, one context with N sequences); the raw side gets one context with N
 * sequences and N concurrent evaluate loops, which node-llama-cpp batches into shared decode
 * steps just like Flint's worker. Reported over the window in which every stream is producing:
 * aggregate tok/s (goal: gateway >= 0.95x raw), p50/p99 inter-token latency (gaps between SSE
 * content chunks; between tokens on the raw side) and fairness (fewest/most tokens per stream).
 */
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { userHistory, userMessages } from '../lib/conversation.js';
import { nonce, textOfTokens } from '../lib/prompts.js';
import { rawGenerate } from '../lib/rawEngine.js';
import { goal, num, table, times } from '../lib/report.js';
import { percentile, ratio, summarize } from '../lib/stats.js';
import { estimatedTokenTimes, ttftMs } from '../lib/turn.js';
import type { BenchContext, Scenario, ScenarioResult } from '../lib/types.js';
import { finished } from '../lib/result.js';

const levels = [1, 2, 4, 8];
const promptTokens = 32;
const requestTimeoutMs = 300_000;

interface StreamTrace {
  /** Arrival time of every token (estimated per SSE chunk on the gateway side). */
  readonly tokenTimes: number[];
  /** Arrival times of the events the client saw (tokens raw, content chunks gateway). */
  readonly eventTimes: number[];
}

interface RunMetrics {
  readonly streams: number;
  readonly side: 'raw' | 'gateway';
  readonly run: number;
  readonly aggregateTokPerS: number;
  readonly windowMs: number;
  readonly fairness: number;
  readonly minTokens: number;
  readonly maxTokens: number;
  readonly gaps: number[];
  readonly totalTokens: number;
  /** Time to first token of each stream, from the moment all were sent together. */
  readonly ttfts: number[];
}

/**
 * Median TTFT of 8 streams arriving together measured with llama-server (llama.cpp's own server,
 * built from the source node-llama-cpp ships, same GGUF, `-t 1 -tb 2 -np 8`, same client script):
 * the goal for Flint's worker, which batches the prompts of concurrent arrivals the same way.
 */
const llamaServerTtft8Ms = 74;

/** Window in which every stream is producing: from the last first token to the first last token. */
function measure(streams: number, side: RunMetrics['side'], run: number, traces: readonly StreamTrace[], ttfts: number[]): RunMetrics {
  const live = traces.filter((t) => t.tokenTimes.length > 1);
  let start = Math.max(...live.map((t) => t.tokenTimes[0]));
  let end = Math.min(...live.map((t) => t.tokenTimes.at(-1)!));
  // A stream that ended very early (end of generation) would leave no window: use the whole span.
  if (!(end - start > 0)) {
    start = Math.min(...live.map((t) => t.tokenTimes[0]));
    end = Math.max(...live.map((t) => t.tokenTimes.at(-1)!));
  }
  const counts = traces.map((t) => t.tokenTimes.filter((x) => x > start && x <= end).length);
  const inWindow = counts.reduce((a, b) => a + b, 0);
  const gaps = traces.flatMap((t) => t.eventTimes.slice(1).map((x, i) => x - t.eventTimes[i]));
  return {
    streams,
    side,
    run,
    aggregateTokPerS: inWindow / ((end - start) / 1000),
    windowMs: end - start,
    fairness: Math.min(...counts) / Math.max(...counts),
    minTokens: Math.min(...counts),
    maxTokens: Math.max(...counts),
    gaps,
    totalTokens: traces.reduce((a, t) => a + t.tokenTimes.length, 0),
    ttfts,
  };
}

export const concurrencyScenario: Scenario = {
  name: 'concurrency',
  title: 'Concurrent streams',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const runs = ctx.runs(4, 6);
    const maxTokens = ctx.options.quick ? 64 : 128;
    const contextSize = Math.min(ctx.maxContext, 512);
    const metrics: RunMetrics[] = [];
    let stoppedEarly = false;
    for (const streams of levels) {
      if (deadline.expired) {
        stoppedEarly = true;
        break;
      }
      const server = await ctx.startFlint({ contextSize, slots: streams });
      const context = await raw.createContext(contextSize, streams);
      const sequences = Array.from({ length: streams }, () => context.getSequence());
      const prompt = () => textOfTokens(nonce(), promptTokens, raw.tokenizer);
      try {
        await rawGenerate(raw, sequences[0], userHistory(prompt()), { maxTokens: 4, reuse: true });
        await streamChat(server.url, { messages: userMessages(prompt()), max_tokens: 4 }, requestTimeoutMs);
        for (let run = 0; run < runs; run++) {
          if (deadline.expired) {
            stoppedEarly = true;
            break;
          }
          const runSide = async (side: RunMetrics['side']) => {
            if (side === 'raw') {
              const rawRuns = await Promise.all(sequences.map((s) => rawGenerate(raw, s, userHistory(prompt()), { maxTokens, reuse: true })));
              const ttfts = rawRuns.map((r) => (r.firstTokenAt ?? Number.NaN) - r.startedAt);
              metrics.push(measure(streams, side, run, rawRuns.map((r) => ({ tokenTimes: r.tokenTimes, eventTimes: r.tokenTimes })), ttfts));
            } else {
              const turns = await Promise.all(Array.from({ length: streams }, () => streamChat(server.url, { messages: userMessages(prompt()), max_tokens: maxTokens }, requestTimeoutMs)));
              metrics.push(measure(streams, side, run, turns.map((t) => ({ tokenTimes: estimatedTokenTimes(t), eventTimes: t.contentTimes })), turns.map((t) => ttftMs(t))));
            }
          };
          // The side that goes first alternates, so neither always follows the other's work.
          for (const side of run % 2 === 0 ? (['raw', 'gateway'] as const) : (['gateway', 'raw'] as const)) await runSide(side);
          const r = metrics.find((m) => m.streams === streams && m.run === run && m.side === 'raw')!;
          const g = metrics.find((m) => m.streams === streams && m.run === run && m.side === 'gateway')!;
          ctx.log(`concurrency ${streams} run ${run + 1}/${runs}: raw ${num(r.aggregateTokPerS)} tok/s, gateway ${num(g.aggregateTokPerS)} tok/s`);
        }
      } finally {
        await server.close();
        await context.dispose();
      }
    }
    const rows = levels
      .filter((n) => metrics.some((m) => m.streams === n))
      .map((n) => {
        const side = (s: RunMetrics['side']) => {
          const ms = metrics.filter((m) => m.streams === n && m.side === s);
          const gaps = ms.flatMap((m) => m.gaps).sort((a, b) => a - b);
          return {
            aggregate: summarize(ms.map((m) => m.aggregateTokPerS)).median,
            itlP50: percentile(gaps, 50),
            itlP99: percentile(gaps, 99),
            fairness: summarize(ms.map((m) => m.fairness)).min,
            ttft: summarize(ms.flatMap((m) => m.ttfts)).median,
          };
        };
        const r = side('raw');
        const g = side('gateway');
        return { streams: n, raw: r, gateway: g, aggregateRatio: ratio(g.aggregate, r.aggregate) };
      });
    const markdown = [
      `${runs} interleaved run(s) per level; ${promptTokens}-token prompts, ${maxTokens} tokens per stream; Flint slots = streams; ` +
        'aggregate tok/s over the window in which all streams produce (median of runs); ITL pooled over runs; fairness = fewest/most tokens per stream in that window (worst run); ' +
        'TTFT: median over all streams of all runs, each from the moment the level\'s streams were sent together (raw: including rendering its prompt). ' +
        `Goal for 8 streams: no worse than llama-server's ${llamaServerTtft8Ms} ms on the same model (a manual run, see bench/README.md).`,
      '',
      table(
        ['streams', 'raw tok/s', 'gateway tok/s', 'gateway/raw', 'raw ITL p50/p99 ms', 'gateway ITL p50/p99 ms', 'raw fairness', 'gateway fairness', 'raw TTFT ms', 'gateway TTFT ms'],
        rows.map((r) => [
          String(r.streams),
          num(r.raw.aggregate),
          num(r.gateway.aggregate),
          times(r.aggregateRatio),
          `${num(r.raw.itlP50, 2)} / ${num(r.raw.itlP99, 2)}`,
          `${num(r.gateway.itlP50, 2)} / ${num(r.gateway.itlP99, 2)}`,
          num(r.raw.fairness, 2),
          num(r.gateway.fairness, 2),
          num(r.raw.ttft, 1),
          num(r.gateway.ttft, 1),
        ]),
      ),
    ].join('\n');
    return finished(this, stoppedEarly, {
      settings: { levels, runs, maxTokens, promptTokens, contextSize },
      samples: metrics,
      stats: rows,
      markdown,
      goals: [
        ...rows.map((r) => goal(this.name, `aggregate tok/s gateway/raw, ${r.streams} stream(s)`, r.aggregateRatio, '>=', 0.95)),
        ...rows.filter((r) => r.streams === 8).map((r) => goal(this.name, 'median TTFT, 8 streams arriving together (llama-server: 74 ms)', r.gateway.ttft, '<=', llamaServerTtft8Ms, ' ms')),
      ],
    });
  },
};

/**
 * The prompt cache's three paths, on one slot: miss (a new prompt), hit (the same prompt again:
 * only the last token is evaluated) and saved-prefix restore (conversation A, then B takes the
 * slot, then A again: Flint saved A's KV state to host memory when B evicted it and loads it
 * back). The raw side does the same work with node-llama-cpp's state files on the same
 * sequence, so the rows compare like for like; `cached` is what Flint reported in usage.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { userHistory, userMessages } from '../lib/conversation.js';
import { nonce, textOfTokens } from '../lib/prompts.js';
import { rawGenerate, type RawGenerateOptions } from '../lib/rawEngine.js';
import { med, num, table, times } from '../lib/report.js';
import { ratio, summarize } from '../lib/stats.js';
import { ttftMs } from '../lib/turn.js';
import type { BenchContext, Scenario, ScenarioResult } from '../lib/types.js';
import { finished } from '../lib/result.js';

const requestTimeoutMs = 300_000;
const steps = ['miss (A new)', 'hit (A again)', 'miss (B evicts A)', 'restore (A again)'] as const;
type Step = (typeof steps)[number];

interface Sample {
  readonly run: number;
  readonly step: Step;
  readonly side: 'raw' | 'gateway';
  readonly ttftMs: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
}

export const promptCacheScenario: Scenario = {
  name: 'prompt-cache',
  title: 'Prompt cache: hit, miss, saved-prefix restore',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const runs = ctx.runs(3, 5);
    const promptTokens = Math.min(1024, Math.floor(ctx.maxContext / 2));
    const contextSize = ctx.contextFor(promptTokens + 64);
    const server = await ctx.startFlint({ contextSize, slots: 1 });
    const context = await raw.createContext(contextSize, 1);
    const sequence = context.getSequence();
    // Like Flint's worker: state files on tmpfs where there is one.
    const stateDir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'flint-bench-state-'));
    const samples: Sample[] = [];
    let stoppedEarly = false;
    try {
      await rawGenerate(raw, sequence, userHistory(textOfTokens(nonce(), 64, raw.tokenizer)), { maxTokens: 4, reuse: true });
      await streamChat(server.url, { messages: userMessages(textOfTokens(nonce(), 64, raw.tokenizer)), max_tokens: 4 }, requestTimeoutMs);
      for (let run = 0; run < runs; run++) {
        if (deadline.expired) {
          stoppedEarly = true;
          break;
        }
        const fileA = path.join(stateDir, `a${run}.bin`);
        const fileB = path.join(stateDir, `b${run}.bin`);
        const raws = { a: userHistory(textOfTokens(nonce(), promptTokens, raw.tokenizer)), b: userHistory(textOfTokens(nonce(), promptTokens, raw.tokenizer)) };
        const gws = { a: userMessages(textOfTokens(nonce(), promptTokens, raw.tokenizer)), b: userMessages(textOfTokens(nonce(), promptTokens, raw.tokenizer)) };
        // What Flint's slot does at each step, done directly: save the evicted state, load the saved one.
        const plan: Array<[Step, 'a' | 'b', RawGenerateOptions['before']]> = [
          [steps[0], 'a', undefined],
          [steps[1], 'a', undefined],
          [steps[2], 'b', async (s) => void (await s.saveStateToFile(fileA))],
          [
            steps[3],
            'a',
            async (s) => {
              await s.saveStateToFile(fileB);
              await s.loadStateFromFile(fileA, { acceptRisk: true });
            },
          ],
        ];
        for (const [step, which, before] of plan) {
          const measure = async (side: Sample['side']) => {
            if (side === 'raw') {
              const r = await rawGenerate(raw, sequence, raws[which], { maxTokens: 2, reuse: true, before });
              samples.push({ run, step, side, ttftMs: r.engineTtftMs, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens });
            } else {
              const g = await streamChat(server.url, { messages: gws[which], max_tokens: 2 }, requestTimeoutMs);
              samples.push({ run, step, side, ttftMs: ttftMs(g), promptTokens: g.usage?.promptTokens ?? NaN, cachedTokens: g.usage?.cachedTokens ?? NaN });
            }
          };
          // The side that goes first alternates by run, so neither always follows the other's work.
          for (const side of run % 2 === 0 ? (['raw', 'gateway'] as const) : (['gateway', 'raw'] as const)) await measure(side);
        }
        const line = steps.map((s) => `${s.split(' ')[0]} ${samples.filter((x) => x.run === run && x.step === s).map((x) => num(x.ttftMs, 1)).join('/')}`).join(', ');
        ctx.log(`prompt-cache run ${run + 1}/${runs} (raw/gateway ms): ${line}`);
      }
    } finally {
      await server.close();
      await context.dispose();
      rmSync(stateDir, { recursive: true, force: true });
    }
    const pick = (step: Step, side: Sample['side'], key: 'ttftMs' | 'cachedTokens' = 'ttftMs') =>
      summarize(samples.filter((s) => s.step === step && s.side === side).map((s) => s[key]));
    const rows = steps.map((step) => ({
      step,
      raw: pick(step, 'raw'),
      gateway: pick(step, 'gateway'),
      ratio: ratio(pick(step, 'gateway').median, pick(step, 'raw').median),
      cached: pick(step, 'gateway', 'cachedTokens').median,
      rawCached: pick(step, 'raw', 'cachedTokens').median,
    }));
    const markdown = [
      `${runs} interleaved run(s) (the side that goes first alternates); ${promptTokens}-token prompts; one slot of ${contextSize} tokens; two generated tokens (TTFT is the first). ` +
        'Raw TTFT is the engine\'s own (without rendering the chat template). Raw "B evicts A" includes saving A\'s state; raw "restore" includes saving B\'s state and loading A\'s (what Flint does at those steps).',
      '',
      table(
        ['step', 'raw TTFT ms', 'gateway TTFT ms', 'gateway/raw', 'gateway cached tokens', 'raw cached tokens'],
        rows.map((r) => [r.step, med(r.raw, 2), med(r.gateway, 2), times(r.ratio, 2), num(r.cached, 0), num(r.rawCached, 0)]),
      ),
    ].join('\n');
    return finished(this, stoppedEarly, {
      settings: { runs, promptTokens, contextSize },
      samples,
      stats: rows,
      markdown,
      goals: [],
    });
  },
};

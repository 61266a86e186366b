/**
 * Time to first token for long prompts, cold and warm. Cold = a never-seen prompt (unique first
 * words), so everything but the chat template's first tokens is evaluated. Warm = the same
 * prompt again: Flint's slot keeps the KV prefix and evaluates only the last token; the raw side
 * does the same on its sequence (erase the last token and what followed, evaluate it). The warm
 * difference gateway - raw is the gateway's fixed per-request cost (goal <= 1 ms).
 */
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { userHistory, userMessages } from '../lib/conversation.js';
import { nonce, textOfTokens } from '../lib/prompts.js';
import { rawGenerate } from '../lib/rawEngine.js';
import { goal, med, num, table, times } from '../lib/report.js';
import { ratio, summarize } from '../lib/stats.js';
import { ttftMs } from '../lib/turn.js';
import type { BenchContext, Scenario, ScenarioResult } from '../lib/types.js';
import { finished } from '../lib/result.js';

const requestTimeoutMs = 600_000;
/** Room for the chat template around the prompt and the generated tokens. */
const margin = 64;
/**
 * Two tokens, not one: with one, Flint sends the first token only as generation ends, which is
 * not the path a streaming client waits on; TTFT is still the first token on both sides.
 */
const generated = 2;
/** Warm requests per side per run, back to back; the steady value ignores the first. */
const warmRepeats = 3;

interface Sample {
  readonly size: number;
  readonly run: number;
  readonly side: 'raw' | 'gateway';
  readonly kind: 'cold' | 'warm';
  /** Warm requests are repeated back to back; repeat 0 follows the other side's work. */
  readonly repeat: number;
  readonly ttftMs: number;
  /** Raw only: rendering the chat template and tokenizing, not in its TTFT. */
  readonly renderMs: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
}

export const ttftScenario: Scenario = {
  name: 'ttft',
  title: 'Time to first token, cold and warm',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const wanted = ctx.options.quick ? [1024] : [1024, 4096, 16384];
    const sizes = wanted.filter((s) => s + margin <= ctx.maxContext);
    const skippedSizes = wanted.filter((s) => !sizes.includes(s));
    if (sizes.length === 0) throw new Error(`context ${ctx.maxContext} is too small for a ${wanted[0]}-token prompt`);
    const contextSize = ctx.contextFor(Math.max(...sizes) + margin);
    const runs = ctx.runs(10, 15);
    const server = await ctx.startFlint({ contextSize, slots: 1 });
    const context = await raw.createContext(contextSize, 1);
    const sequence = context.getSequence();
    const samples: Sample[] = [];
    let stoppedEarly = false;
    try {
      await rawGenerate(raw, sequence, userHistory(textOfTokens(nonce(), 64, raw.tokenizer)), { maxTokens: 4, reuse: true });
      await streamChat(server.url, { messages: userMessages(textOfTokens(nonce(), 64, raw.tokenizer)), max_tokens: 4 }, requestTimeoutMs);
      for (const size of sizes) {
        for (let run = 0; run < runs; run++) {
          if (deadline.expired) {
            stoppedEarly = true;
            break;
          }
          // Each side gets its own never-seen prompt of the same length.
          const rawPrompt = userHistory(textOfTokens(nonce(), size, raw.tokenizer));
          const gatewayPrompt = userMessages(textOfTokens(nonce(), size, raw.tokenizer));
          const measure = async (side: Sample['side'], kind: Sample['kind'], repeat: number) => {
            if (side === 'raw') {
              const r = await rawGenerate(raw, sequence, rawPrompt, { maxTokens: generated, reuse: true });
              samples.push({ size, run, side, kind, repeat, ttftMs: r.engineTtftMs, renderMs: r.renderMs, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens });
            } else {
              const g = await streamChat(server.url, { messages: gatewayPrompt, max_tokens: generated }, requestTimeoutMs);
              samples.push({ size, run, side, kind, repeat, ttftMs: ttftMs(g), renderMs: NaN, promptTokens: g.usage?.promptTokens ?? NaN, cachedTokens: g.usage?.cachedTokens ?? NaN });
            }
          };
          // Alternate which side goes first, and repeat warm requests back to back: the first
          // request after a process sat idle pays for waking up (on a shared VM, up to a few
          // hundred ms with a 0.5B model), which is not the gateway's cost.
          const order: Array<Sample['side']> = run % 2 === 0 ? ['raw', 'gateway'] : ['gateway', 'raw'];
          for (const side of order) await measure(side, 'cold', 0);
          for (const side of order) for (let repeat = 0; repeat < warmRepeats; repeat++) await measure(side, 'warm', repeat);
          const at = (side: Sample['side'], kind: Sample['kind'], repeat: number) => samples.find((x) => x.size === size && x.run === run && x.side === side && x.kind === kind && x.repeat === repeat)?.ttftMs;
          ctx.log(
            `ttft ${size} run ${run + 1}/${runs}: cold raw ${num(at('raw', 'cold', 0))} / gateway ${num(at('gateway', 'cold', 0))} ms; ` +
              `warm raw ${num(at('raw', 'warm', warmRepeats - 1), 2)} / gateway ${num(at('gateway', 'warm', warmRepeats - 1), 2)} ms`,
          );
        }
      }
    } finally {
      await server.close();
      await context.dispose();
    }
    /** Cold samples, or warm ones in steady state (repeats after the first) or only the first. */
    const pick = (size: number, side: Sample['side'], kind: Sample['kind'] | 'warm-first', key: 'ttftMs' | 'renderMs' | 'promptTokens' | 'cachedTokens' = 'ttftMs') =>
      summarize(
        samples
          .filter((s) => s.size === size && s.side === side && (kind === 'warm-first' ? s.kind === 'warm' && s.repeat === 0 : s.kind === kind && (kind === 'cold' || s.repeat > 0)))
          .map((s) => s[key]),
      );
    const rows = sizes.map((size) => {
      const rawCold = pick(size, 'raw', 'cold');
      const gwCold = pick(size, 'gateway', 'cold');
      const rawWarm = pick(size, 'raw', 'warm');
      const gwWarm = pick(size, 'gateway', 'warm');
      return {
        size,
        promptTokens: pick(size, 'gateway', 'cold', 'promptTokens').median,
        rawCold,
        gwCold,
        coldRatio: ratio(gwCold.median, rawCold.median),
        rawWarm,
        gwWarm,
        warmDiffMs: gwWarm.median - rawWarm.median,
        rawRender: pick(size, 'raw', 'warm', 'renderMs'),
        rawWarmFirst: pick(size, 'raw', 'warm-first'),
        gwWarmFirst: pick(size, 'gateway', 'warm-first'),
        gwWarmCached: pick(size, 'gateway', 'warm', 'cachedTokens').median,
        gwColdCached: pick(size, 'gateway', 'cold', 'cachedTokens').median,
      };
    });
    const markdown = [
      `Median (min–max) of ${runs} interleaved runs per size (the side that goes first alternates); slot/sequence context ${contextSize} tokens; ${generated} generated tokens. ` +
        `Warm = ${warmRepeats} back-to-back requests per side and run, the first left out ("first warm" shows it: it follows the other side's work and pays for waking an idle process). ` +
        'Raw TTFT is the engine\'s own (erase, prefill, first decode); "raw render" is rendering the chat template and tokenizing, which Flint also does per request and which is therefore part of the gateway - raw difference.' +
        (skippedSizes.length > 0 ? ` Sizes above the context (${skippedSizes.join(', ')}) or left out by --quick were not run.` : ''),
      '',
      table(
        ['prompt tokens', 'raw cold ms', 'gateway cold ms', 'cold ratio', 'raw warm ms', 'gateway warm ms', 'warm gateway - raw ms', 'raw render ms', 'first warm raw / gateway ms', 'gateway cached (warm / cold)'],
        rows.map((r) => [
          num(r.promptTokens, 0),
          med(r.rawCold),
          med(r.gwCold),
          times(r.coldRatio, 2),
          med(r.rawWarm, 2),
          med(r.gwWarm, 2),
          num(r.warmDiffMs, 2),
          med(r.rawRender, 2),
          `${num(r.rawWarmFirst.median, 1)} / ${num(r.gwWarmFirst.median, 1)}`,
          `${num(r.gwWarmCached, 0)} / ${num(r.gwColdCached, 0)}`,
        ]),
      ),
    ].join('\n');
    return finished(this, stoppedEarly, {
      settings: { sizes, contextSize, runs },
      samples,
      stats: rows,
      markdown,
      goals: rows.map((r) => goal(this.name, `warm TTFT gateway - raw, ${r.size} tokens`, r.warmDiffMs, '<=', 1, ' ms')),
    });
  },
};

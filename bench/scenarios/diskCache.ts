/**
 * The disk prompt cache across a restart: prompts of about 1k, 4k and 16k tokens (`--quick`: 1k
 * and 4k) are computed once by a Flint with one slot and the disk cache on (cold: that is the
 * recompute), evicted to disk, Flint is closed, a new Flint starts on the same data folder, and
 * each prompt is sent again: its prefix is restored from disk (checked, then loaded). Before
 * every restore a short prompt empties the slot, so the restore does not also pay for saving
 * what the slot held. The raw side computes the same 1k and 4k prompts cold, saves each state to
 * a file on the same disk and loads it back (the physical limit of a restore: no checksum, no
 * HTTP); its 16k cold time is estimated from a fit t = a·n + b·n² of its 1k and 4k times, not
 * measured (the 16k prompt is computed cold only once, by Flint, which needs its state anyway).
 * The files are in the page cache when read back (they were written moments before): a cold
 * disk adds their size divided by its read speed. Reported: TTFT of each, restore vs recompute,
 * and disk bytes per 1k tokens of the entries.
 */
import { mkdtempSync, openSync, readdirSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { userHistory, userMessages } from '../lib/conversation.js';
import { nonce, textOfTokens } from '../lib/prompts.js';
import { rawGenerate } from '../lib/rawEngine.js';
import { goal, med, num, table, times } from '../lib/report.js';
import { finished } from '../lib/result.js';
import { ratio, summarize } from '../lib/stats.js';
import { ttftMs } from '../lib/turn.js';
import { skipped, type BenchContext, type Scenario, type ScenarioResult } from '../lib/types.js';

const requestTimeoutMs = 900_000;
const diskCacheBytes = 4 * 1024 ** 3;
/** Host memory for saved prefixes: one byte, smaller than any state, so every eviction goes straight to disk. */
const savedPrefixBytes = 1;

interface Sample {
  readonly tokens: number;
  readonly kind: 'flint cold' | 'flint restore' | 'raw cold' | 'raw restore';
  readonly ms: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
}

export const diskCacheScenario: Scenario = {
  name: 'disk-cache',
  title: 'Disk prompt cache: restore after a restart vs recompute',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const sizes = (ctx.options.quick ? [1024, 4096] : [1024, 4096, 16384]).filter((n) => n + 64 <= ctx.maxContext);
    if (sizes.length === 0) return skipped(this, `the context (${ctx.maxContext}) holds no 1k-token prompt`);
    const runs = ctx.runs(3, 5);
    const contextSize = ctx.contextFor(sizes.at(-1)! + 64);
    const prompts = sizes.map((n) => textOfTokens(nonce(), n, raw.tokenizer));
    const dataDir = mkdtempSync(path.join(tmpdir(), 'flint-bench-disk-'));
    const samples: Sample[] = [];
    const entries: Array<{ tokens: number; bytes: number }> = [];
    let stoppedEarly = false;
    const settings = { contextSize, slots: 1, dataDir, savedPrefixBytes, sections: { engine: { diskCacheBytes, saveIdleSlotsAfterMs: 0 } } };
    const flintTurn = async (url: string, text: string, tokens: number, kind: Sample['kind']) => {
      const turn = await streamChat(url, { messages: userMessages(text), max_tokens: 2 }, requestTimeoutMs);
      samples.push({ tokens, kind, ms: ttftMs(turn), promptTokens: turn.usage?.promptTokens ?? Number.NaN, cachedTokens: turn.usage?.cachedTokens ?? Number.NaN });
      ctx.log(`disk-cache ${kind} ${tokens}: ${num(samples.at(-1)!.ms, 1)} ms (${samples.at(-1)!.cachedTokens} of ${samples.at(-1)!.promptTokens} cached)`);
    };
    /** A prompt too short to be saved takes the slot: the next request finds it empty. */
    const emptySlot = (url: string) => streamChat(url, { messages: userMessages(`${nonce()} ok`), max_tokens: 1 }, requestTimeoutMs);
    try {
      // Recompute: Flint computes each prompt cold; each is evicted to disk by the next.
      const first = await ctx.startFlint(settings);
      try {
        for (const [i, n] of sizes.entries()) await flintTurn(first.url, prompts[i], n, 'flint cold');
        await emptySlot(first.url);
        await waitForEntries(first.url, sizes.length, 120_000);
      } finally {
        await first.close();
      }
      entries.push(...readEntries(path.join(dataDir, 'prompt-cache', 'w0')));

      // The raw engine: cold, then a restore from its own state file on the same disk.
      const context = await raw.createContext(contextSize, 1);
      const sequence = context.getSequence();
      const rawDir = mkdtempSync(path.join(tmpdir(), 'flint-bench-raw-state-'));
      try {
        for (const [i, n] of sizes.entries()) {
          if (n > 4096 || deadline.expired) continue;
          const history = userHistory(prompts[i]);
          const cold = await rawGenerate(raw, sequence, history, { maxTokens: 1, reuse: false });
          samples.push({ tokens: n, kind: 'raw cold', ms: cold.engineTtftMs, promptTokens: cold.promptTokens, cachedTokens: 0 });
          const file = path.join(rawDir, `${n}.bin`);
          await sequence.saveStateToFile(file);
          for (let run = 0; run < runs; run++) {
            const restore = async (s: typeof sequence) => {
              await s.clearHistory();
              await s.loadStateFromFile(file, { acceptRisk: true });
            };
            const r = await rawGenerate(raw, sequence, history, { maxTokens: 1, reuse: true, before: restore });
            samples.push({ tokens: n, kind: 'raw restore', ms: r.engineTtftMs, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens });
          }
          ctx.log(`disk-cache raw ${n}: cold ${num(cold.engineTtftMs, 0)} ms, restore ${med(summarize(samples.filter((s) => s.kind === 'raw restore' && s.tokens === n).map((s) => s.ms)), 1)} ms`);
        }
      } finally {
        await context.dispose();
        rmSync(rawDir, { recursive: true, force: true });
      }

      // After the restart: every prompt restored from disk, `runs` times.
      const second = await ctx.startFlint(settings);
      try {
        for (let run = 0; run < runs && !stoppedEarly; run++) {
          for (const [i, n] of sizes.entries()) {
            if (deadline.expired) {
              stoppedEarly = true;
              break;
            }
            await emptySlot(second.url);
            await flintTurn(second.url, prompts[i], n, 'flint restore');
          }
        }
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    return report(this, ctx, { sizes, runs, contextSize, samples, entries, stoppedEarly });
  },
};

function report(
  scenario: Scenario,
  ctx: BenchContext,
  run: { sizes: number[]; runs: number; contextSize: number; samples: Sample[]; entries: Array<{ tokens: number; bytes: number }>; stoppedEarly: boolean },
): ScenarioResult {
  const pick = (n: number, kind: Sample['kind'], key: 'ms' | 'cachedTokens' = 'ms') => summarize(run.samples.filter((s) => s.tokens === n && s.kind === kind).map((s) => s[key]));
  // The raw engine's cold time where it was not measured: t = a·n + b·n² through its 1k and 4k times.
  const [p, q] = [1024, 4096].map((n) => ({ ms: pick(n, 'raw cold').median, tokens: run.samples.find((s) => s.tokens === n && s.kind === 'raw cold')?.promptTokens ?? n }));
  const b = Math.max(0, (q.ms / q.tokens - p.ms / p.tokens) / (q.tokens - p.tokens));
  const a = Math.max(0, p.ms / p.tokens - b * p.tokens);
  const rawCold = (n: number) => (pick(n, 'raw cold').n > 0 ? { ms: pick(n, 'raw cold').median, isEstimate: false } : { ms: a * n + b * n * n, isEstimate: true });
  const rows = run.sizes.map((n) => {
    const restore = pick(n, 'flint restore');
    const cold = pick(n, 'flint cold').median;
    const entry = run.entries.find((e) => Math.abs(e.tokens - n) < n / 8);
    return {
      tokens: n,
      flintCold: cold,
      flintRestore: restore,
      cached: pick(n, 'flint restore', 'cachedTokens').median,
      rawCold: rawCold(n),
      rawRestore: pick(n, 'raw restore'),
      speedup: ratio(cold, restore.median),
      speedupVsRaw: ratio(rawCold(n).ms, restore.median),
      entryBytes: entry?.bytes ?? Number.NaN,
      bytesPer1k: entry ? (entry.bytes / entry.tokens) * 1000 : Number.NaN,
    };
  });
  const mib = (bytes: number) => num(bytes / 1024 ** 2, 2);
  const perThousand = summarize(rows.map((r) => r.bytesPer1k)).median;
  const markdown = [
    `${run.runs} restore(s) per size after a restart (one slot of ${run.contextSize} tokens, emptied by a short prompt before each restore); two generated tokens (TTFT is the first). ` +
      '"flint cold" is the prompt computed by Flint before the restart (the recompute a restore saves); raw cold 16k is estimated from a fit of the raw 1k and 4k times (marked ~). ' +
      'Entry files were still in the page cache when read back.',
    '',
    table(
      ['prompt', 'flint cold (recompute) ms', 'flint restore from disk ms', 'restore cached tokens', 'restore vs recompute', 'raw cold ms', 'restore vs raw cold', 'raw restore from file ms', 'entry MiB', 'MiB per 1k tokens'],
      rows.map((r) => [
        `${r.tokens}`,
        num(r.flintCold, 0),
        med(r.flintRestore, 1),
        num(r.cached, 0),
        times(r.speedup, 1),
        `${r.rawCold.isEstimate ? '~' : ''}${num(r.rawCold.ms, 0)}`,
        times(r.speedupVsRaw, 1),
        med(r.rawRestore, 1),
        mib(r.entryBytes),
        mib(r.bytesPer1k),
      ]),
    ),
    '',
    `Disk per 1k tokens of context (${ctx.modelLabel}): ${mib(perThousand)} MiB (${num(perThousand / 1024, 0)} KiB).`,
  ].join('\n');
  const at4k = rows.find((r) => r.tokens === 4096);
  return finished(scenario, run.stoppedEarly, {
    settings: { sizes: run.sizes, runs: run.runs, contextSize: run.contextSize, diskCacheBytes, savedPrefixBytes },
    samples: run.samples,
    stats: { rows, diskBytesPer1kTokens: perThousand, rawFit: { aMsPerToken: a, bMsPerToken2: b } },
    markdown,
    goals: at4k ? [goal(scenario.name, 'restore from disk vs recompute, 4k-token prompt', at4k.speedup, '>=', 50, 'x')] : [],
  });
}

/** Polls Flint's metrics until its disk cache holds `count` entries (the background writes ended). */
async function waitForEntries(url: string, count: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const text = await (await fetch(`${url}/metrics`)).text();
    const entries = Number(/^flint_disk_prompt_cache_entries\{worker="0"\} (\S+)$/m.exec(text)?.[1] ?? 0);
    if (entries >= count) return;
    if (Date.now() > until) throw new Error(`the disk cache held ${entries} of ${count} entries after ${timeoutMs} ms`);
    await delay(100);
  }
}

/** Size and token count (from the state file's own header) of every entry file in `dir`. */
function readEntries(dir: string): Array<{ tokens: number; bytes: number }> {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.fpc'))
    .map((name) => {
      const file = path.join(dir, name);
      const fd = openSync(file, 'r');
      try {
        const header = Buffer.alloc(12);
        readSync(fd, header, 0, 12, 0);
        return { tokens: header.readUInt32LE(8), bytes: statSync(file).size };
      } finally {
        closeSync(fd);
      }
    });
}

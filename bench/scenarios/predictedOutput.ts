/**
 * Predicted outputs (Chat Completions `prediction`): how much faster a generation decodes when
 * the client sends the text it expects (e.g. a file being rewritten with a small change).
 * Probed first: if a prediction equal to the greedy output is not accepted (usage
 * `completion_tokens_details.accepted_prediction_tokens` = 0), Flint does not implement it yet
 * and the scenario is skipped with that note.
 *
 * Per run, interleaved: raw plain decode (the engine's single-stream limit without
 * speculation), gateway without a prediction, gateway with an exact prediction (the greedy
 * output itself, the best case), and gateway with that prediction edited in the middle (a
 * realistic rewrite). Reported: decode tok/s from first to last token, accepted/rejected
 * prediction tokens, and the speedup over the gateway's own plain decode.
 */
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { userHistory, userMessages } from '../lib/conversation.js';
import { request } from '../lib/httpStream.js';
import { codeText, hashSeed, nonce } from '../lib/prompts.js';
import { decodeRate, streamDecodeRate } from '../lib/turn.js';
import { rawGenerate } from '../lib/rawEngine.js';
import { med, num, table, times } from '../lib/report.js';
import { ratio, summarize } from '../lib/stats.js';
import { skipped, type BenchContext, type Scenario, type ScenarioResult } from '../lib/types.js';
import { finished } from '../lib/result.js';

const requestTimeoutMs = 300_000;
const paths = ['raw plain', 'gateway plain', 'gateway exact prediction', 'gateway edited prediction'] as const;
type PathName = (typeof paths)[number];

interface Sample {
  readonly run: number;
  readonly path: PathName;
  readonly tokPerS: number;
  readonly tokens: number;
  readonly accepted: number;
  readonly rejected: number;
}

interface Completion {
  choices?: Array<{ message?: { content?: string } }>;
  usage?: { completion_tokens_details?: { accepted_prediction_tokens?: number } };
}

/** Whether a prediction equal to the output is accepted (non-streaming, like the first clients). */
async function probe(url: string): Promise<{ ok: boolean; detail: string }> {
  const ask = async (extra: Record<string, unknown>) => {
    const body = { model: 'bench', temperature: 0, max_tokens: 32, messages: userMessages('Rewrite this function with const instead of let.'), ...extra };
    const res = await request(`${url}/v1/chat/completions`, 'POST', JSON.stringify(body), 60_000);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    return JSON.parse(res.text) as Completion;
  };
  try {
    const text = (await ask({})).choices?.[0]?.message?.content ?? '';
    const accepted = (await ask({ prediction: { type: 'content', content: text } })).usage?.completion_tokens_details?.accepted_prediction_tokens ?? 0;
    return accepted > 0 ? { ok: true, detail: `${accepted} tokens accepted` } : { ok: false, detail: 'a prediction equal to the output was not accepted' };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

/** A prompt asking to rewrite a code file, so the expected output resembles the input. */
function rewritePrompt(): string {
  const lead = nonce();
  return `${lead} Rewrite this file, renaming parse to parseValue:\n${codeText(hashSeed(lead), 400)}`;
}

export const predictedOutputScenario: Scenario = {
  name: 'predicted-output',
  title: 'Predicted outputs',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const maxTokens = ctx.options.tokens;
    const contextSize = Math.min(ctx.maxContext, 2048);
    const server = await ctx.startFlint({ contextSize, slots: 1 });
    const context = await raw.createContext(contextSize, 1);
    const sequence = context.getSequence();
    const samples: Sample[] = [];
    let stoppedEarly = false;
    try {
      const supported = await probe(server.url);
      if (!supported.ok) {
        ctx.log(`predicted-output skipped: not implemented in Flint yet (${supported.detail})`);
        return skipped(this, `not implemented in Flint yet (${supported.detail})`);
      }
      await rawGenerate(raw, sequence, userHistory(rewritePrompt()), { maxTokens: 4, reuse: true });
      const runs = ctx.runs(2, 3);
      for (let run = 0; run < runs; run++) {
        if (deadline.expired) {
          stoppedEarly = true;
          break;
        }
        const r = await rawGenerate(raw, sequence, userHistory(rewritePrompt()), { maxTokens, reuse: true });
        samples.push({ run, path: 'raw plain', tokPerS: decodeRate(r.completionTokens, r.firstTokenAt, r.tokenTimes.at(-1)), tokens: r.completionTokens, accepted: 0, rejected: 0 });
        const messages = userMessages(rewritePrompt());
        const plain = await streamChat(server.url, { messages, max_tokens: maxTokens }, requestTimeoutMs);
        const half = Math.floor(plain.text.length / 2);
        const predictions: Array<[PathName, string | undefined]> = [
          ['gateway plain', undefined],
          ['gateway exact prediction', plain.text],
          ['gateway edited prediction', `${plain.text.slice(0, half)} parseValue(input) ${plain.text.slice(half)}`],
        ];
        for (const [path, prediction] of predictions) {
          // The plain request above was cold; send it again so every gateway path starts from a warm prompt.
          const g = await streamChat(server.url, { messages, max_tokens: maxTokens, ...(prediction === undefined ? {} : { prediction: { type: 'content', content: prediction } }) }, requestTimeoutMs);
          samples.push({
            run,
            path,
            tokPerS: streamDecodeRate(g),
            tokens: g.usage?.completionTokens ?? 0,
            accepted: g.usage?.acceptedPredictionTokens ?? 0,
            rejected: g.usage?.rejectedPredictionTokens ?? 0,
          });
        }
        ctx.log(`predicted-output run ${run + 1}/${runs}: ${samples.filter((s) => s.run === run).map((s) => `${s.path} ${num(s.tokPerS)} tok/s`).join(', ')}`);
      }
    } finally {
      await server.close();
      await context.dispose();
    }
    const of = (path: PathName, key: 'tokPerS' | 'tokens' | 'accepted' | 'rejected') => summarize(samples.filter((s) => s.path === path).map((s) => s[key]));
    const plainRate = of('gateway plain', 'tokPerS').median;
    const rows = paths.map((path) => ({
      path,
      tokPerS: of(path, 'tokPerS'),
      tokens: of(path, 'tokens'),
      accepted: of(path, 'accepted').median,
      rejected: of(path, 'rejected').median,
      speedup: ratio(of(path, 'tokPerS').median, plainRate),
    }));
    const markdown = [
      `Rewrite prompts (new each run), up to ${maxTokens} tokens, temperature 0; decode tok/s from the first to the last token; median (min–max). ` +
        'Exact = the greedy output itself (best case); edited = that output with a few words inserted in the middle.',
      '',
      table(
        ['path', 'decode tok/s', 'tokens', 'accepted', 'rejected', 'vs gateway plain'],
        rows.map((r) => [r.path, med(r.tokPerS), med(r.tokens, 0), num(r.accepted, 0), num(r.rejected, 0), times(r.speedup, 2)]),
      ),
    ].join('\n');
    return finished(this, stoppedEarly, {
      settings: { maxTokens, contextSize },
      samples,
      stats: rows,
      markdown,
      goals: [],
    });
  },
};

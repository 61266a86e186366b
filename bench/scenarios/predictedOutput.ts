/**
 * Predicted outputs (Chat Completions `prediction`): how much faster a mostly-known rewrite
 * decodes when the client sends the expected text. Flint does not implement it yet, so this
 * scenario is a hook: it probes whether the gateway accepts prediction tokens (usage
 * `completion_tokens_details.accepted_prediction_tokens` > 0 for a prediction equal to the
 * greedy output) and reports "not implemented in Flint yet" until it does. The measurement to
 * add then: decode tok/s with vs without a prediction on the gateway, against the raw side's
 * plain decode and node-llama-cpp's own token predictors (InputLookupTokenPredictor).
 */
import { request } from '../lib/httpStream.js';
import type { Deadline } from '../lib/clock.js';
import { skipped, type BenchContext, type Scenario, type ScenarioResult } from '../lib/types.js';

interface Completion {
  choices?: Array<{ message?: { content?: string } }>;
  usage?: { completion_tokens_details?: { accepted_prediction_tokens?: number } };
}

async function complete(url: string, body: Record<string, unknown>): Promise<Completion> {
  const res = await request(`${url}/v1/chat/completions`, 'POST', JSON.stringify({ model: 'bench', temperature: 0, max_tokens: 32, ...body }), 60_000);
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text.slice(0, 200)}`);
  return JSON.parse(res.text) as Completion;
}

export const predictedOutputScenario: Scenario = {
  name: 'predicted-output',
  title: 'Predicted outputs',
  async run(ctx: BenchContext, _deadline: Deadline): Promise<ScenarioResult> {
    const server = await ctx.startFlint({ contextSize: 1024, slots: 1 });
    try {
      const messages = [{ role: 'user', content: 'Rewrite this function with const instead of let.' }];
      const first = await complete(server.url, { messages });
      const text = first.choices?.[0]?.message?.content ?? '';
      const second = await complete(server.url, { messages, prediction: { type: 'content', content: text } });
      const accepted = second.usage?.completion_tokens_details?.accepted_prediction_tokens ?? 0;
      if (accepted === 0) {
        ctx.log('predicted-output skipped: not implemented in Flint yet');
        return skipped(this, 'not implemented in Flint yet (a prediction equal to the output was not accepted)');
      }
      return skipped(this, `Flint accepted ${accepted} prediction tokens: the measurement itself is still to be written (see bench/scenarios/predictedOutput.ts)`);
    } finally {
      await server.close();
    }
  },
};

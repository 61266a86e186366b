/** Streams one Chat Completions request (`stream: true`, usage included) and times it. */
import { bodyText, parseSse, postStream } from './httpStream.js';
import type { StreamTurn, Usage } from './turn.js';

interface ChatChunk {
  choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: {
    prompt_tokens: number;
    completion_tokens: number;
    prompt_tokens_details?: { cached_tokens?: number };
    completion_tokens_details?: { accepted_prediction_tokens?: number; rejected_prediction_tokens?: number };
  } | null;
  error?: { message?: string };
}

/** Fields merged over the defaults: greedy, streamed, with usage. */
export type ChatBody = Record<string, unknown> & { messages: unknown[] };

export async function streamChat(baseUrl: string, body: ChatBody, timeoutMs: number): Promise<StreamTurn> {
  const payload = JSON.stringify({ model: 'bench', temperature: 0, stream: true, stream_options: { include_usage: true }, ...body });
  const response = await postStream(`${baseUrl}/v1/chat/completions`, payload, timeoutMs);
  if (response.status !== 200) throw new Error(`chat completions: HTTP ${response.status}: ${bodyText(response)}`);
  let firstTokenAt: number | undefined;
  const contentTimes: number[] = [];
  const contentLengths: number[] = [];
  let text = '';
  let usage: Usage | undefined;
  let finishReason: string | undefined;
  for (const frame of parseSse(response.chunks)) {
    if (frame.data === '[DONE]') continue;
    const chunk = JSON.parse(frame.data) as ChatChunk;
    if (chunk.error) throw new Error(`chat completions stream error: ${chunk.error.message ?? frame.data}`);
    const choice = chunk.choices?.[0];
    const content = choice?.delta?.content;
    if (content) {
      firstTokenAt ??= frame.t;
      contentTimes.push(frame.t);
      contentLengths.push(content.length);
      text += content;
    }
    if (choice?.finish_reason) {
      firstTokenAt ??= frame.t;
      finishReason = choice.finish_reason;
    }
    if (chunk.usage) {
      usage = {
        promptTokens: chunk.usage.prompt_tokens,
        completionTokens: chunk.usage.completion_tokens,
        cachedTokens: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
        acceptedPredictionTokens: chunk.usage.completion_tokens_details?.accepted_prediction_tokens,
        rejectedPredictionTokens: chunk.usage.completion_tokens_details?.rejected_prediction_tokens,
      };
    }
  }
  return { startedAt: response.startedAt, firstTokenAt, contentTimes, contentLengths, text, usage, finishReason, endedAt: response.endedAt };
}

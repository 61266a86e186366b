import { Type, type Static } from '@sinclair/typebox';
import { FlintError } from '../../errors/FlintError.js';
import type { GenerateRequest, RequestId } from '../../core/types.js';
import { createValidator } from '../validate.js';

const NumberOrNull = (min: number, max: number) => Type.Optional(Type.Union([Type.Number({ minimum: min, maximum: max }), Type.Null()]));

/** `POST /v1/completions` body as far as Flint reads it; unknown fields are ignored. */
export const CompletionRequestSchema = Type.Object({
  model: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 }), Type.Array(Type.Integer()), Type.Array(Type.Array(Type.Integer()))]),
  suffix: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  temperature: NumberOrNull(0, 2),
  top_p: NumberOrNull(0, 1),
  /** llama.cpp takes a 32-bit seed; negative values are accepted as OpenAI allows them. */
  seed: Type.Optional(Type.Union([Type.Integer({ minimum: -2147483648, maximum: 4294967295 }), Type.Null()])),
  stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 16 }), Type.Null()])),
  presence_penalty: NumberOrNull(-2, 2),
  frequency_penalty: NumberOrNull(-2, 2),
  n: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  best_of: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  echo: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }), Type.Null()])),
  prompt_cache_key: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});

type CompletionRequest = Static<typeof CompletionRequestSchema>;
const validator = createValidator(CompletionRequestSchema);

/** OpenAI's default when `max_tokens` is omitted. */
const defaultMaxTokens = 16;

/** A parsed completion request. */
export interface ParsedCompletionRequest {
  readonly request: GenerateRequest;
  readonly model: string;
  readonly isStream: boolean;
  readonly includeUsage: boolean;
  /** Text to put in front of the completion (`echo`). */
  readonly echo: string;
}

/** Checks an untrusted Completions body; `suffix` turns it into fill-in-the-middle. */
export function parseCompletionRequest(body: unknown, id: RequestId, resolveModel: (requested: unknown) => string): ParsedCompletionRequest {
  const wire: CompletionRequest = validator.parse(body);
  const model = resolveModel(wire.model);
  if ((wire.n ?? 1) > 1 || (wire.best_of ?? 1) > 1) {
    throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: (wire.n ?? 1) > 1 ? 'n' : 'best_of', details: { detail: 'Only one completion per request is supported.' } });
  }
  const { prompt, tokens } = toPrompt(wire.prompt);
  const suffix = wire.suffix ?? undefined;
  if (tokens && suffix !== undefined) {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'suffix', details: { detail: 'suffix cannot be combined with a token-id prompt.' } });
  }
  if (wire.echo && suffix !== undefined) {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'echo', details: { detail: 'echo cannot be combined with suffix.' } });
  }
  const isStream = wire.stream === true;
  return {
    model,
    isStream,
    includeUsage: isStream && wire.stream_options?.include_usage === true,
    echo: wire.echo ? prompt : '',
    request: {
      id,
      model,
      input: suffix !== undefined ? { type: 'infill', prefix: prompt, suffix } : { type: 'text', prompt, tokens },
      inputParam: 'prompt',
      sampling: {
        temperature: wire.temperature ?? undefined,
        topP: wire.top_p ?? undefined,
        seed: wire.seed ?? undefined,
        presencePenalty: wire.presence_penalty ?? undefined,
        frequencyPenalty: wire.frequency_penalty ?? undefined,
      },
      maxTokens: wire.max_tokens ?? defaultMaxTokens,
      isWarmupOnly: wire.max_tokens === 0,
      stop: wire.stop == null ? [] : typeof wire.stop === 'string' ? [wire.stop] : wire.stop,
      cacheKey: wire.prompt_cache_key ?? undefined,
    },
  };
}

/** One prompt: a string, a one-string array, or one array of token ids (as vLLM and OpenAI take them). */
function toPrompt(prompt: CompletionRequest['prompt']): { prompt: string; tokens?: readonly number[] } {
  if (typeof prompt === 'string') return { prompt };
  if (prompt.length === 1 && typeof prompt[0] === 'string') return { prompt: prompt[0] };
  if (prompt.length > 0 && prompt.every((t) => typeof t === 'number')) return { prompt: '', tokens: prompt as number[] };
  if (prompt.length === 1 && Array.isArray(prompt[0]) && prompt[0].length > 0) return { prompt: '', tokens: prompt[0] };
  throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', {
    param: 'prompt',
    details: { detail: 'Send one prompt per request: a string or an array of token ids; batches are not supported.' },
  });
}

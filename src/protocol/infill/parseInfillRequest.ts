import { Type, type Static } from '@sinclair/typebox';
import type { GenerateRequest, RequestId } from '../../core/types.js';
import { createValidator } from '../validate.js';

const NumberOrNull = (min: number, max: number) => Type.Optional(Type.Union([Type.Number({ minimum: min, maximum: max }), Type.Null()]));

/**
 * llama.cpp's `POST /infill` body as far as Flint reads it (llama-server's field names); unknown
 * fields are ignored. Accepted and ignored: `cache_prompt` (Flint always reuses the longest
 * cached prefix), `id_slot` (the router picks the slot holding the prefix), `samplers`,
 * `t_max_prompt_ms` (llama-server ignores it too), `n_indent`, `lora`, and `n_cmpl` (one
 * completion is returned, which llama.vscode accepts).
 */
export const InfillRequestSchema = Type.Object({
  model: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  input_prefix: Type.Optional(Type.String()),
  input_suffix: Type.Optional(Type.String()),
  input_extra: Type.Optional(Type.Array(Type.Object({ text: Type.String(), filename: Type.Optional(Type.String()) }), { maxItems: 4096 })),
  prompt: Type.Optional(Type.String()),
  /** -1: up to the end of the context (llama-server's default). */
  n_predict: Type.Optional(Type.Integer({ minimum: -1 })),
  temperature: NumberOrNull(0, 2),
  top_k: Type.Optional(Type.Integer({ minimum: 0 })),
  top_p: NumberOrNull(0, 1),
  min_p: NumberOrNull(0, 1),
  seed: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 4294967295 })),
  stop: Type.Optional(Type.Array(Type.String(), { maxItems: 16 })),
  stream: Type.Optional(Type.Boolean()),
  /** After this long generating, stop at the next newline once one has been written (llama-server's rule). */
  t_max_predict_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  response_fields: Type.Optional(Type.Array(Type.String(), { maxItems: 64 })),
});

type InfillRequest = Static<typeof InfillRequestSchema>;
const validator = createValidator(InfillRequestSchema);

/** A parsed `/infill` request. */
export interface ParsedInfillRequest {
  readonly request: GenerateRequest;
  readonly model: string;
  readonly isStream: boolean;
  /** `response_fields`: only these paths (`a/b`) are returned, as flat keys. */
  readonly responseFields?: readonly string[];
}

/** Checks an untrusted `/infill` body and maps it to a fill-in-the-middle request in llama-server's layout. */
export function parseInfillRequest(body: unknown, id: RequestId, resolveModel: (requested: unknown) => string): ParsedInfillRequest {
  const wire: InfillRequest = validator.parse(body);
  const model = resolveModel(wire.model);
  const nPredict = wire.n_predict ?? -1;
  return {
    model,
    isStream: wire.stream === true,
    responseFields: wire.response_fields && wire.response_fields.length > 0 ? wire.response_fields : undefined,
    request: {
      id,
      model,
      input: {
        type: 'infill',
        prefix: wire.input_prefix ?? '',
        suffix: wire.input_suffix ?? '',
        repo: { extra: (wire.input_extra ?? []).map((chunk) => ({ filename: chunk.filename ?? 'tmp', text: chunk.text })), prompt: wire.prompt ?? '' },
      },
      inputParam: 'input_prefix',
      sampling: {
        temperature: wire.temperature ?? undefined,
        topK: wire.top_k,
        topP: wire.top_p ?? undefined,
        minP: wire.min_p ?? undefined,
        seed: wire.seed,
      },
      maxTokens: nPredict < 0 ? undefined : nPredict,
      // n_predict 0 is llama.vscode's warm-up: evaluate the extra context into the cache, generate nothing.
      isWarmupOnly: nPredict === 0,
      maxPredictMs: wire.t_max_predict_ms && wire.t_max_predict_ms > 0 ? wire.t_max_predict_ms : undefined,
      stop: wire.stop ?? [],
    },
  };
}

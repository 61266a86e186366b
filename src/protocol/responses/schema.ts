import { Type, type Static } from '@sinclair/typebox';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const NumberOrNull = (min: number, max: number) => Type.Optional(Type.Union([Type.Number({ minimum: min, maximum: max }), Type.Null()]));

/** `POST /v1/responses` (and WebSocket `response.create`) body as far as Flint reads it; unknown fields are ignored. */
export const ResponseCreateSchema = Type.Object({
  model: Type.Optional(Nullable(Type.String())),
  input: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Unknown()), Type.Null()])),
  instructions: Type.Optional(Nullable(Type.String())),
  previous_response_id: Type.Optional(Nullable(Type.String())),
  store: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  background: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  max_output_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  temperature: NumberOrNull(0, 2),
  top_p: NumberOrNull(0, 1),
  /** llama.cpp takes a 32-bit seed; negative values are accepted as OpenAI allows them. */
  seed: Type.Optional(Type.Union([Type.Integer({ minimum: -2147483648, maximum: 4294967295 }), Type.Null()])),
  /** Checked item by item in protocol/tools.ts (function, namespace, custom, hosted). */
  tools: Type.Optional(Type.Union([Type.Array(Type.Unknown(), { maxItems: 512 }), Type.Null()])),
  tool_choice: Type.Optional(Type.Unknown()),
  parallel_tool_calls: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  text: Type.Optional(Type.Union([Type.Object({ format: Type.Optional(Type.Unknown()), verbosity: Type.Optional(Type.Unknown()) }), Type.Null()])),
  metadata: Type.Optional(Type.Union([Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 16 }), Type.Null()])),
  prompt_cache_key: Type.Optional(Nullable(Type.String())),
  truncation: Type.Optional(Type.Union([Type.Literal('disabled'), Type.Literal('auto'), Type.Null()])),
  reasoning: Type.Optional(Type.Unknown()),
  include: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
  conversation: Type.Optional(Type.Unknown()),
  prompt: Type.Optional(Type.Unknown()),
  user: Type.Optional(Type.Unknown()),
  /** WebSocket mode: `false` warms the cache and generates nothing. */
  generate: Type.Optional(Type.Boolean()),
});

/** A validated create body. */
export type ResponseCreateBody = Static<typeof ResponseCreateSchema>;

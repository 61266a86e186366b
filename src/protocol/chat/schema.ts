import { Type, type Static } from '@sinclair/typebox';

const TextPart = Type.Object({ type: Type.Literal('text'), text: Type.String() });
/** Any content part; non-text parts pass the schema and are refused with a precise message. */
const AnyPart = Type.Object({ type: Type.String() });
const Content = Type.Union([Type.String(), Type.Array(AnyPart), Type.Null()]);

const ToolCallSchema = Type.Object({
  id: Type.String(),
  type: Type.Optional(Type.Union([Type.Literal('function'), Type.Literal('custom')])),
  function: Type.Optional(Type.Object({ name: Type.String(), arguments: Type.String() })),
  custom: Type.Optional(Type.Object({ name: Type.String(), input: Type.String() })),
});

const Message = Type.Object({
  role: Type.Union(['system', 'developer', 'user', 'assistant', 'tool', 'function'].map((r) => Type.Literal(r))),
  content: Type.Optional(Content),
  name: Type.Optional(Type.String()),
  tool_calls: Type.Optional(Type.Array(ToolCallSchema)),
  tool_call_id: Type.Optional(Type.String()),
});

const Stop = Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 16 }), Type.Null()]);

/** `POST /v1/chat/completions` body, as far as Flint reads it; unknown fields are ignored. */
export const ChatCompletionRequestSchema = Type.Object({
  model: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  messages: Type.Array(Message, { minItems: 1 }),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  /** `continuous_usage_stats` (vLLM's): the usage so far in every chunk. */
  stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()), continuous_usage_stats: Type.Optional(Type.Boolean()) }), Type.Null()])),
  temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
  top_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
  top_k: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  min_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
  /** llama.cpp takes a 32-bit seed; negative values are accepted as OpenAI allows them. */
  seed: Type.Optional(Type.Union([Type.Integer({ minimum: -2147483648, maximum: 4294967295 }), Type.Null()])),
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  stop: Type.Optional(Stop),
  presence_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  frequency_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  repeat_penalty: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.Null()])),
  n: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  user: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  prompt_cache_key: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** Checked item by item in protocol/tools.ts (function, custom, hosted). */
  tools: Type.Optional(Type.Union([Type.Array(Type.Unknown(), { maxItems: 512 }), Type.Null()])),
  tool_choice: Type.Optional(Type.Unknown()),
  prediction: Type.Optional(Type.Union([Type.Object({ type: Type.String(), content: Type.Union([Type.String(), Type.Array(TextPart)]) }), Type.Null()])),
  parallel_tool_calls: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  /** vLLM's: continue the final assistant message instead of starting a new one (with `add_generation_prompt: false`). */
  continue_final_message: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  add_generation_prompt: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  response_format: Type.Optional(Type.Union([Type.Object({ type: Type.String(), json_schema: Type.Optional(Type.Unknown()) }), Type.Null()])),
});

/** A validated Chat Completions request body. */
export type ChatCompletionRequest = Static<typeof ChatCompletionRequestSchema>;
export type ChatMessageWire = Static<typeof Message>;
export { TextPart };

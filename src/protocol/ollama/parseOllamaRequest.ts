import { Type, type Static } from '@sinclair/typebox';
import type { ChatMessage, GenerateRequest, RequestId, ResponseFormat, SamplingOptions } from '../../core/types.js';
import { FlintError } from '../../errors/FlintError.js';
import { parseChatTools, type ToolTable } from '../tools.js';
import { createValidator } from '../validate.js';

/**
 * Ollama's `options` as far as Flint maps them; others (`num_gpu`, `num_thread`, `mirostat`...)
 * are accepted and have no effect (the server's engine settings decide).
 */
const Options = Type.Optional(
  Type.Union([
    Type.Object({
      temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
      top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      top_k: Type.Optional(Type.Integer({ minimum: 0 })),
      min_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      seed: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 4294967295 })),
      /** -1: until the end of generation, -2: until the context is full; both mean no cap here. */
      num_predict: Type.Optional(Type.Integer({ minimum: -2 })),
      stop: Type.Optional(Type.Array(Type.String(), { maxItems: 16 })),
      /** Capped at the served context: a slot's context is set when the server starts. */
      num_ctx: Type.Optional(Type.Integer({ minimum: 1 })),
      repeat_penalty: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
      presence_penalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2 })),
      frequency_penalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2 })),
    }),
    Type.Null(),
  ]),
);
const Format = Type.Optional(Type.Union([Type.Literal('json'), Type.Literal(''), Type.Record(Type.String(), Type.Unknown()), Type.Null()]));
const KeepAlive = Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Number(), Type.Null()]));
const Think = Type.Optional(Type.Union([Type.Boolean(), Type.String({ maxLength: 16 }), Type.Null()]));

const ToolCallWire = Type.Object({ function: Type.Object({ name: Type.String({ minLength: 1 }), arguments: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.String()])) }) });
const MessageWire = Type.Object({
  role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool')]),
  content: Type.Optional(Type.String()),
  images: Type.Optional(Type.Union([Type.Array(Type.String(), { maxItems: 64 }), Type.Null()])),
  tool_calls: Type.Optional(Type.Array(ToolCallWire, { maxItems: 128 })),
  tool_name: Type.Optional(Type.String()),
  /** Earlier thoughts: accepted; not rendered back (Ollama sends them without the template's markers). */
  thinking: Type.Optional(Type.String()),
});

/** `POST /api/chat`. `stream` defaults to true, as in Ollama. */
export const OllamaChatSchema = Type.Object({
  model: Type.String(),
  messages: Type.Array(MessageWire, { maxItems: 100_000 }),
  tools: Type.Optional(Type.Union([Type.Array(Type.Unknown(), { maxItems: 512 }), Type.Null()])),
  format: Format,
  options: Options,
  stream: Type.Optional(Type.Boolean()),
  keep_alive: KeepAlive,
  think: Think,
});

/** `POST /api/generate`: `suffix` makes it fill-in-the-middle; `raw` skips the chat template. */
export const OllamaGenerateSchema = Type.Object({
  model: Type.String(),
  prompt: Type.Optional(Type.String()),
  suffix: Type.Optional(Type.String()),
  system: Type.Optional(Type.String()),
  raw: Type.Optional(Type.Boolean()),
  images: Type.Optional(Type.Union([Type.Array(Type.String(), { maxItems: 64 }), Type.Null()])),
  format: Format,
  options: Options,
  stream: Type.Optional(Type.Boolean()),
  keep_alive: KeepAlive,
  think: Think,
});

const chatValidator = createValidator(OllamaChatSchema);
const generateValidator = createValidator(OllamaGenerateSchema);

/** A parsed Ollama generation request. */
export interface ParsedOllamaRequest {
  readonly request: GenerateRequest;
  /** The model name as the client wrote it (echoed back). */
  readonly model: string;
  readonly isStream: boolean;
  readonly toolTable: ToolTable;
  /** `/api/generate` with an empty prompt: Ollama loads the model and answers `done_reason: "load"`. */
  readonly isLoadOnly: boolean;
}

/** The served model accepts Ollama's `name:tag` form: `flint-tiny` and `flint-tiny:latest` are the same. */
export function withoutLatestTag(name: string): string {
  return name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
}

/** Checks an untrusted `/api/chat` body. */
export function parseOllamaChat(body: unknown, id: RequestId, resolveModel: (requested: unknown) => string): ParsedOllamaRequest {
  const wire = chatValidator.parse(body);
  resolveModel(withoutLatestTag(wire.model));
  const toolTable = parseChatTools(wire.tools ?? [], 'ignore');
  return {
    model: wire.model,
    isStream: wire.stream !== false,
    toolTable,
    isLoadOnly: false,
    request: {
      id,
      model: wire.model,
      input: { type: 'chat', messages: toChatMessages(wire.messages) },
      inputParam: 'messages',
      tools: toolTable.specs,
      ...fromOptions(wire.options ?? undefined),
      responseFormat: toResponseFormat(wire.format ?? undefined),
    },
  };
}

/** Checks an untrusted `/api/generate` body. */
export function parseOllamaGenerate(body: unknown, id: RequestId, resolveModel: (requested: unknown) => string): ParsedOllamaRequest {
  const wire = generateValidator.parse(body);
  resolveModel(withoutLatestTag(wire.model));
  if (wire.images && wire.images.length > 0) throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: 'images', details: { detail: 'The served model reads text only.' } });
  const prompt = wire.prompt ?? '';
  const input: GenerateRequest['input'] =
    wire.suffix !== undefined && wire.suffix !== ''
      ? { type: 'infill', prefix: prompt, suffix: wire.suffix }
      : wire.raw
        ? { type: 'text', prompt, parseSpecial: true }
        : { type: 'chat', messages: [...(wire.system ? [{ role: 'system' as const, content: wire.system }] : []), { role: 'user' as const, content: prompt }] };
  return {
    model: wire.model,
    isStream: wire.stream !== false,
    toolTable: parseChatTools([], 'ignore'),
    isLoadOnly: prompt === '' && (wire.suffix ?? '') === '',
    request: { id, model: wire.model, input, inputParam: 'prompt', ...fromOptions(wire.options ?? undefined), responseFormat: toResponseFormat(wire.format ?? undefined) },
  };
}

type OptionsWire = NonNullable<Static<typeof OllamaChatSchema>['options']>;

function fromOptions(options: OptionsWire | undefined): { sampling: SamplingOptions; maxTokens: number | undefined; stop: string[] } {
  const o = options ?? {};
  return {
    sampling: {
      temperature: o.temperature,
      topP: o.top_p,
      topK: o.top_k,
      minP: o.min_p,
      seed: o.seed,
      repeatPenalty: o.repeat_penalty,
      presencePenalty: o.presence_penalty,
      frequencyPenalty: o.frequency_penalty,
    },
    maxTokens: o.num_predict === undefined || o.num_predict < 0 ? undefined : o.num_predict,
    stop: o.stop ?? [],
  };
}

function toResponseFormat(format: Static<typeof OllamaChatSchema>['format']): ResponseFormat | undefined {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return { type: 'json_object' };
  return { type: 'json_schema', schema: format };
}

/**
 * Ollama's messages carry no call ids: each assistant call gets one, and a tool message answers
 * the oldest call not answered yet (with `tool_name`, the oldest of that name), which is how
 * Ollama pairs them when it renders the template.
 */
function toChatMessages(messages: ReadonlyArray<Static<typeof MessageWire>>): ChatMessage[] {
  const out: ChatMessage[] = [];
  const open: Array<{ id: string; name: string }> = [];
  messages.forEach((m, i) => {
    if (m.images && m.images.length > 0) throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: `messages[${i}].images`, details: { detail: 'The served model reads text only.' } });
    if (m.role === 'assistant') {
      const toolCalls = (m.tool_calls ?? []).map((call, k) => {
        const id = `call_${i}_${k}`;
        open.push({ id, name: call.function.name });
        const args = call.function.arguments;
        return { id, name: call.function.name, arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) };
      });
      out.push({ role: 'assistant', content: m.content ?? '', toolCalls: toolCalls.length > 0 ? toolCalls : undefined });
    } else if (m.role === 'tool') {
      const at = m.tool_name ? open.findIndex((c) => c.name === m.tool_name) : 0;
      const answered = at >= 0 ? open.splice(at, 1)[0] : undefined;
      out.push({ role: 'tool', content: m.content ?? '', toolCallId: answered?.id });
    } else out.push({ role: m.role, content: m.content ?? '' });
  });
  return out;
}

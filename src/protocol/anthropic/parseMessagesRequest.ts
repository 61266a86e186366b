import { Type, type Static } from '@sinclair/typebox';
import type { ChatMessage, GenerateRequest, RequestId, ToolChoice, ToolSpec } from '../../core/types.js';
import { FlintError } from '../../errors/FlintError.js';
import { createValidator } from '../validate.js';

const CacheControl = Type.Optional(Type.Union([Type.Object({ type: Type.String(), ttl: Type.Optional(Type.String()) }), Type.Null()]));
const TextBlock = Type.Object({ type: Type.Literal('text'), text: Type.String(), cache_control: CacheControl, citations: Type.Optional(Type.Unknown()) });
const Block = Type.Object({ type: Type.String({ minLength: 1 }) }, { additionalProperties: true });

/** `POST /v1/messages` (and `count_tokens`) as far as Flint reads it; unknown fields are ignored. */
export const MessagesRequestSchema = Type.Object({
  model: Type.String(),
  max_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
  /** `system` messages inside the conversation: Claude Code sends them (its mid-conversation-system beta). */
  messages: Type.Array(Type.Object({ role: Type.Union([Type.Literal('user'), Type.Literal('assistant'), Type.Literal('system')]), content: Type.Union([Type.String(), Type.Array(Block, { maxItems: 100_000 })]) }), { maxItems: 100_000 }),
  system: Type.Optional(Type.Union([Type.String(), Type.Array(TextBlock, { maxItems: 1024 })])),
  tools: Type.Optional(Type.Array(Type.Object({ type: Type.Optional(Type.String()), name: Type.Optional(Type.String()) }, { additionalProperties: true }), { maxItems: 512 })),
  tool_choice: Type.Optional(
    Type.Object({ type: Type.Union([Type.Literal('auto'), Type.Literal('any'), Type.Literal('tool'), Type.Literal('none')]), name: Type.Optional(Type.String()), disable_parallel_tool_use: Type.Optional(Type.Boolean()) }),
  ),
  stop_sequences: Type.Optional(Type.Array(Type.String(), { maxItems: 16 })),
  temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  top_k: Type.Optional(Type.Integer({ minimum: 0 })),
  stream: Type.Optional(Type.Boolean()),
  metadata: Type.Optional(Type.Object({ user_id: Type.Optional(Type.Union([Type.String(), Type.Null()])) })),
  thinking: Type.Optional(Type.Object({ type: Type.String(), budget_tokens: Type.Optional(Type.Integer({ minimum: 0 })) })),
});

type MessagesRequest = Static<typeof MessagesRequestSchema>;
const validator = createValidator(MessagesRequestSchema);

/** A parsed Messages request. */
export interface ParsedMessagesRequest {
  readonly request: GenerateRequest;
  readonly model: string;
  readonly isStream: boolean;
  /** `thinking: {type: "enabled"}`: thought blocks are returned (the model's thought segment). */
  readonly isThinkingShown: boolean;
}

/** Options of the mapping (config `anthropic`). */
export interface MessagesOptions {
  /**
   * Claude Code's attribution block (`x-anthropic-billing-header: ...`, first in `system`) differs
   * on every request: left out of the prompt, so the rest of the conversation stays a cached prefix.
   */
  readonly dropAttributionBlock: boolean;
  /**
   * A `thinking` block's `signature` back to the thought exactly as it stood in the context
   * (Flint seals it there); undefined for signatures Flint did not make, whose thought is dropped.
   */
  readonly openThinking?: (signature: string) => string | undefined;
}

/** The text of Claude Code's per-request attribution block starts so. */
const attributionPrefix = 'x-anthropic-billing-header:';

/**
 * Checks an untrusted Messages body and maps it to the internal request. `countOnly`:
 * `count_tokens` takes the same body without `max_tokens`.
 */
export function parseMessagesRequest(body: unknown, id: RequestId, resolveModel: (requested: unknown) => string, options: MessagesOptions, countOnly = false): ParsedMessagesRequest {
  const wire: MessagesRequest = validator.parse(body);
  const model = resolveModel(wire.model);
  if (!countOnly && wire.max_tokens === undefined) throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: 'max_tokens' });
  const tools = (wire.tools ?? []).map((tool, i) => toToolSpec(tool, i));
  const toolChoice = toToolChoice(wire.tool_choice, tools);
  return {
    model,
    isStream: wire.stream === true,
    isThinkingShown: wire.thinking?.type === 'enabled',
    request: {
      id,
      model,
      input: { type: 'chat', messages: toChatMessages(wire, options) },
      inputParam: 'messages',
      sampling: { temperature: wire.temperature, topP: wire.top_p, topK: wire.top_k },
      maxTokens: countOnly ? 0 : wire.max_tokens,
      isWarmupOnly: countOnly,
      stop: wire.stop_sequences ?? [],
      cacheKey: wire.metadata?.user_id ?? undefined,
      tools,
      toolChoice,
      parallelToolCalls: wire.tool_choice?.disable_parallel_tool_use !== true,
    },
  };
}

function toToolSpec(tool: { type?: string; name?: string }, i: number): ToolSpec {
  const t = tool as { type?: string; name?: unknown; description?: unknown; input_schema?: unknown };
  // Client tools have no type or `custom`; server tools (web_search_..., bash_..., text_editor_...) have a versioned type.
  if (t.type !== undefined && t.type !== 'custom' && t.input_schema === undefined) {
    throw new FlintError('FLINT_ERR_UNSUPPORTED_TOOL', { param: `tools[${i}]`, details: { detail: `Server tool '${t.type}' is not supported; send client tools with an input_schema.` } });
  }
  if (typeof t.name !== 'string' || t.name.length === 0) throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `tools[${i}].name` });
  return {
    name: t.name,
    description: typeof t.description === 'string' ? t.description : undefined,
    parameters: t.input_schema !== null && typeof t.input_schema === 'object' ? (t.input_schema as Record<string, unknown>) : undefined,
  };
}

function toToolChoice(choice: MessagesRequest['tool_choice'], tools: readonly ToolSpec[]): ToolChoice | undefined {
  if (!choice) return undefined;
  switch (choice.type) {
    case 'auto':
      return 'auto';
    case 'none':
      return 'none';
    case 'any':
      return 'required';
    case 'tool':
      if (!choice.name || !tools.some((t) => t.name === choice.name)) {
        throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'tool_choice.name', details: { detail: `tool_choice names '${choice.name ?? ''}', which is not in tools.` } });
      }
      return { name: choice.name };
  }
}

/** System text, then each message's blocks: text, tool uses (assistant) and tool results (user). */
function toChatMessages(wire: MessagesRequest, options: MessagesOptions): ChatMessage[] {
  const out: ChatMessage[] = [];
  const systemBlocks = typeof wire.system === 'string' ? [{ text: wire.system }] : (wire.system ?? []);
  const system = systemBlocks
    .filter((b) => !(options.dropAttributionBlock && b.text.startsWith(attributionPrefix)))
    .map((b) => b.text)
    .join('\n\n');
  if (system) out.push({ role: 'system', content: system });
  wire.messages.forEach((message, i) => {
    if (typeof message.content === 'string') {
      out.push({ role: message.role, content: message.content });
      return;
    }
    let text = '';
    let reasoning: string | undefined;
    const toolCalls: Array<{ id: string; name: string; arguments: string }> = [];
    if (message.role === 'system' && message.content.some((b) => b.type !== 'text')) {
      throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: `messages[${i}].content`, details: { detail: 'System messages may hold text blocks only.' } });
    }
    const results: ChatMessage[] = [];
    message.content.forEach((raw, k) => {
      const block = raw as Record<string, unknown>;
      const param = `messages[${i}].content[${k}]`;
      switch (block.type) {
        case 'text':
          if (typeof block.text !== 'string') throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `${param}.text` });
          text += text ? `\n\n${block.text}` : block.text;
          break;
        case 'tool_use':
          if (message.role !== 'assistant') throw new FlintError('FLINT_ERR_INVALID_VALUE', { param, details: { detail: 'tool_use blocks belong to assistant messages.' } });
          if (typeof block.id !== 'string' || typeof block.name !== 'string') throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `${param}.${typeof block.id !== 'string' ? 'id' : 'name'}` });
          toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input ?? {}) });
          break;
        case 'tool_result':
          if (typeof block.tool_use_id !== 'string') throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `${param}.tool_use_id` });
          results.push({ role: 'tool', toolCallId: block.tool_use_id, content: toolResultText(block.content, param) });
          break;
        case 'thinking':
          // A thought Flint sealed comes back as it stood in the context, so the prompt stays the cached prefix.
          if (message.role === 'assistant' && typeof block.signature === 'string' && block.signature) reasoning = options.openThinking?.(block.signature) ?? reasoning;
          break;
        case 'redacted_thinking':
          break;
        default:
          throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: `${param}.type`, details: { detail: `Content blocks of type '${String(block.type)}' are not supported (the model reads text).` } });
      }
    });
    // Tool results answer the previous assistant turn: they go before any text of this user turn.
    out.push(...results);
    if (text || toolCalls.length > 0 || reasoning !== undefined || results.length === 0) {
      out.push({ role: message.role, content: text, toolCalls: toolCalls.length > 0 ? toolCalls : undefined, ...(reasoning !== undefined ? { reasoning } : {}) });
    }
  });
  return out;
}

function toolResultText(content: unknown, param: string): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: `${param}.content`, details: { detail: 'Expected a string or an array of text blocks.' } });
  return content
    .map((b: { type?: unknown; text?: unknown }, k) => {
      if (b?.type !== 'text' || typeof b.text !== 'string') throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: `${param}.content[${k}]`, details: { detail: 'Tool results may hold text blocks only.' } });
      return b.text;
    })
    .join('\n');
}

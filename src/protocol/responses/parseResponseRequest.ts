import { FlintError } from '../../errors/FlintError.js';
import type { ResponseFormat, ToolChoice, ToolSpec } from '../../core/types.js';
import { createValidator } from '../validate.js';
import { parseInputItems, type ConversationItem } from './items.js';
import { ResponseCreateSchema, type ResponseCreateBody } from './schema.js';

const validator = createValidator(ResponseCreateSchema);

const hostedTools = new Set([
  'web_search',
  'web_search_preview',
  'file_search',
  'code_interpreter',
  'computer_use',
  'computer_use_preview',
  'image_generation',
  'mcp',
  'local_shell',
  'shell',
  'apply_patch',
  'tool_search',
  'custom',
]);

/** A checked create request: what generation needs, plus what the response object echoes. */
export interface ParsedResponseRequest {
  readonly body: ResponseCreateBody;
  readonly model: string;
  readonly input: ConversationItem[];
  readonly instructions: string | undefined;
  readonly previousResponseId: string | undefined;
  readonly isStored: boolean;
  readonly isStream: boolean;
  readonly isGenerating: boolean;
  readonly tools: ToolSpec[];
  readonly toolChoice: ToolChoice;
  readonly parallelToolCalls: boolean;
  readonly responseFormat: ResponseFormat | undefined;
  /** The `text` object to echo. */
  readonly text: { format: Record<string, unknown>; verbosity: string };
  readonly metadata: Record<string, string>;
}

/** Checks an untrusted Responses create body (HTTP or WebSocket `response.create`). */
export function parseResponseRequest(raw: unknown, resolveModel: (requested: unknown) => string): ParsedResponseRequest {
  const body = validator.parse(raw);
  const model = resolveModel(body.model);
  if (body.background === true) throw unsupported('background', 'Background responses are not supported; omit background or set it to false.');
  if (body.conversation != null) throw unsupported('conversation', 'Server-side conversations are not supported; use previous_response_id.');
  if (body.prompt != null) throw unsupported('prompt', 'Prompt templates are not supported.');
  const input = parseInputItems(body.input);
  const previousResponseId = body.previous_response_id ?? undefined;
  const isGenerating = body.generate !== false;
  if (input.length === 0 && !previousResponseId && isGenerating) {
    throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: 'input' });
  }
  const tools = parseTools(body.tools ?? []);
  const { format, responseFormat } = parseTextFormat(body.text?.format);
  return {
    body,
    model,
    input,
    instructions: body.instructions ?? undefined,
    previousResponseId,
    isStored: body.store !== false,
    isStream: body.stream === true,
    isGenerating,
    tools,
    toolChoice: parseToolChoice(body.tool_choice, tools),
    parallelToolCalls: body.parallel_tool_calls !== false,
    responseFormat,
    text: { format, verbosity: typeof body.text?.verbosity === 'string' ? body.text.verbosity : 'medium' },
    metadata: body.metadata ?? {},
  };
}

function parseTools(tools: NonNullable<ResponseCreateBody['tools']>): ToolSpec[] {
  return tools.map((tool, i) => {
    if (tool.type !== 'function') {
      throw new FlintError('FLINT_ERR_UNSUPPORTED_TOOL', {
        param: `tools[${i}].type`,
        details: { detail: hostedTools.has(tool.type) ? `Hosted tool '${tool.type}' is not available on this server.` : `Unknown tool type '${tool.type}'.` },
      });
    }
    if (!tool.name) throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `tools[${i}].name` });
    return { name: tool.name, description: tool.description ?? undefined, parameters: tool.parameters ?? undefined };
  });
}

function parseToolChoice(choice: unknown, tools: readonly ToolSpec[]): ToolChoice {
  if (choice === undefined || choice === null || choice === 'auto') return 'auto';
  if (choice === 'none' || choice === 'required') return choice;
  const object = choice as { type?: unknown; name?: unknown; mode?: unknown; tools?: unknown } | null;
  if (object?.type === 'function' && typeof object.name === 'string') {
    if (!tools.some((t) => t.name === object.name)) {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'tool_choice', details: { detail: `tool_choice names '${object.name}', which is not in tools.` } });
    }
    return { name: object.name };
  }
  if (object?.type === 'allowed_tools') return object.mode === 'required' ? 'required' : 'auto';
  throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'tool_choice', details: { detail: "Invalid value for 'tool_choice'." } });
}

function parseTextFormat(format: unknown): { format: Record<string, unknown>; responseFormat: ResponseFormat | undefined } {
  if (format === undefined || format === null) return { format: { type: 'text' }, responseFormat: undefined };
  const f = format as { type?: unknown; schema?: unknown; name?: unknown };
  switch (f.type) {
    case 'text':
      return { format: { type: 'text' }, responseFormat: undefined };
    case 'json_object':
      return { format: { type: 'json_object' }, responseFormat: { type: 'json_object' } };
    case 'json_schema':
      if (typeof f.schema !== 'object' || f.schema === null) throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: 'text.format.schema' });
      return { format: format as Record<string, unknown>, responseFormat: { type: 'json_schema', schema: f.schema as Record<string, unknown> } };
    default:
      throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'text.format.type', details: { detail: "Invalid value for 'text.format.type': expected text, json_object or json_schema." } });
  }
}

function unsupported(param: string, detail: string): FlintError {
  return new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param, details: { detail } });
}

import { FlintError } from '../../errors/FlintError.js';
import type { ResponseFormat, ToolChoice, ToolSpec } from '../../core/types.js';
import { createValidator } from '../validate.js';
import { parseInputItems, type InputItem } from './items.js';
import { parseResponsesTools, type HostedToolPolicy, type ToolTable } from '../tools.js';
import { ResponseCreateSchema, type ResponseCreateBody } from './schema.js';

const validator = createValidator(ResponseCreateSchema);

/** A checked create request: what generation needs, plus what the response object echoes. */
export interface ParsedResponseRequest {
  readonly body: ResponseCreateBody;
  readonly model: string;
  /** Input items; `item_reference`s are resolved against stored responses when the request runs. */
  readonly input: InputItem[];
  readonly instructions: string | undefined;
  readonly previousResponseId: string | undefined;
  readonly isStored: boolean;
  readonly isStream: boolean;
  readonly isGenerating: boolean;
  readonly tools: ToolSpec[];
  /** How the model's tool calls map back to the request's tools (namespaces, custom tools). */
  readonly toolTable: ToolTable;
  readonly toolChoice: ToolChoice;
  /** The input ended with `compaction_trigger`: summarize the conversation instead of continuing it. */
  readonly isCompactionRequested: boolean;
  /** `include: ["reasoning.encrypted_content"]`: reasoning items carry their sealed text. */
  readonly isReasoningIncluded: boolean;
  readonly parallelToolCalls: boolean;
  readonly responseFormat: ResponseFormat | undefined;
  /** The `text` object to echo. */
  readonly text: { format: Record<string, unknown>; verbosity: string };
  readonly metadata: Record<string, string>;
}

/** Checks an untrusted Responses create body (HTTP or WebSocket `response.create`). */
/** Settings that change how requests are read (config `responses`). */
export interface ResponsesParseOptions {
  readonly hostedTools: HostedToolPolicy;
}

export function parseResponseRequest(raw: unknown, resolveModel: (requested: unknown) => string, options: ResponsesParseOptions): ParsedResponseRequest {
  const body = validator.parse(raw);
  const model = resolveModel(body.model);
  if (body.background === true) throw unsupported('background', 'Background responses are not supported; omit background or set it to false.');
  if (body.conversation != null) throw unsupported('conversation', 'Server-side conversations are not supported; use previous_response_id.');
  if (body.prompt != null) throw unsupported('prompt', 'Prompt templates are not supported.');
  const { items: input, isCompactionRequested } = parseInputItems(body.input);
  const previousResponseId = body.previous_response_id ?? undefined;
  const isGenerating = body.generate !== false;
  if (input.length === 0 && !previousResponseId && isGenerating) {
    throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: 'input' });
  }
  const toolTable = parseResponsesTools(body.tools ?? [], options.hostedTools);
  const tools = toolTable.specs;
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
    toolTable,
    toolChoice: parseToolChoice(body.tool_choice, toolTable),
    isCompactionRequested,
    isReasoningIncluded: body.include?.includes('reasoning.encrypted_content') === true,
    parallelToolCalls: body.parallel_tool_calls !== false,
    responseFormat,
    text: { format, verbosity: typeof body.text?.verbosity === 'string' ? body.text.verbosity : 'medium' },
    metadata: body.metadata ?? {},
  };
}

function parseToolChoice(choice: unknown, table: ToolTable): ToolChoice {
  if (choice === undefined || choice === null || choice === 'auto') return 'auto';
  if (choice === 'none' || choice === 'required') return table.specs.length === 0 ? 'auto' : choice;
  const object = choice as { type?: unknown; name?: unknown; namespace?: unknown; mode?: unknown; tools?: unknown } | null;
  if ((object?.type === 'function' || object?.type === 'custom') && typeof object.name === 'string') {
    const namespace = typeof object.namespace === 'string' ? object.namespace : undefined;
    const name = [...table.byModelName].find(([, wire]) => wire.name === object.name && wire.type === object.type && (namespace === undefined || wire.namespace === namespace))?.[0];
    if (name === undefined) {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'tool_choice', details: { detail: `tool_choice names '${object.name}', which is not in tools.` } });
    }
    return { name };
  }
  // A hosted tool Flint left out cannot be forced; the model answers freely instead.
  if (typeof object?.type === 'string' && table.ignoredHosted.includes(object.type)) return 'auto';
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

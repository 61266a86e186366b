import { FlintError } from '../errors/FlintError.js';
import type { CustomToolFormat, ToolCall, ToolSpec } from '../core/types.js';

/** What Flint does with hosted tools it cannot run (config `responses.hostedTools`). */
export type HostedToolPolicy = 'ignore' | 'reject';

/** Hosted (server-side) tool types of the OpenAI APIs; Flint has no backend for any of them. */
export const hostedToolTypes: ReadonlySet<string> = new Set([
  'web_search',
  'web_search_preview',
  'web_search_preview_2025_03_11',
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
]);

/** The wire identity of a tool the model sees under one flat name. */
export interface WireTool {
  readonly type: 'function' | 'custom';
  /** Name as the client declared it (inside its namespace, if any). */
  readonly name: string;
  /** The `namespace` tool that groups this function, if any. */
  readonly namespace?: string;
}

/** The tools of one request: what the model is offered, and how to map its calls back. */
export interface ToolTable {
  readonly specs: ToolSpec[];
  /** Model-visible name → wire identity. */
  readonly byModelName: ReadonlyMap<string, WireTool>;
  /** Types of hosted tools left out of the prompt (for a debug line and a metric). */
  readonly ignoredHosted: readonly string[];
}

/** A tool call as a protocol renders it: a function (maybe namespaced) or a custom tool with free text. */
export type WireToolCall =
  | { readonly type: 'function'; readonly callId: string; readonly name: string; readonly namespace?: string; readonly arguments: string }
  | { readonly type: 'custom'; readonly callId: string; readonly name: string; readonly input: string };

/** The flat name under which a namespaced function is offered to the model (`namespace.name`). */
export function toModelToolName(name: string, namespace?: string): string {
  return namespace ? `${namespace}.${name}` : name;
}

/** Arguments object a custom tool's free-text input travels in through the chat template. */
export function toCustomArguments(input: string): string {
  return JSON.stringify({ input });
}

/** Maps a model call back to its wire tool; unknown names stay plain functions. */
export function toWireToolCall(call: ToolCall, table: ToolTable | undefined): WireToolCall {
  const tool = table?.byModelName.get(call.name);
  if (tool?.type === 'custom') return { type: 'custom', callId: call.id, name: tool.name, input: customInput(call.arguments) };
  return { type: 'function', callId: call.id, name: tool?.name ?? call.name, namespace: tool?.namespace, arguments: call.arguments };
}

/** The text of a custom call: `{"input": "..."}` as the template writes it, else the raw arguments. */
function customInput(args: string): string {
  try {
    const parsed = JSON.parse(args) as unknown;
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { input?: unknown }).input === 'string') return (parsed as { input: string }).input;
  } catch {
    // fall through: not JSON
  }
  return args;
}

/** One tool as it arrives in a Responses body (`function`, `namespace`, `custom`, or hosted). */
interface ResponsesToolWire {
  readonly type?: unknown;
  readonly name?: unknown;
  readonly description?: unknown;
  readonly parameters?: unknown;
  readonly tools?: unknown;
  readonly format?: unknown;
}

/**
 * Checks a Responses `tools` array. Functions are offered as they are, the functions of a
 * `namespace` tool under `namespace.name`, `custom` tools as functions taking one `input` string;
 * hosted tools are left out (`ignore`) or refused (`reject`).
 */
export function parseResponsesTools(tools: readonly unknown[], policy: HostedToolPolicy): ToolTable {
  const builder = new ToolTableBuilder(policy);
  tools.forEach((raw, i) => {
    const param = `tools[${i}]`;
    const tool = asObject(raw, param) as ResponsesToolWire;
    switch (tool.type) {
      case 'function':
        builder.addFunction(tool, param, undefined);
        break;
      case 'namespace': {
        const namespace = requireName(tool.name, `${param}.name`);
        if (!Array.isArray(tool.tools)) throw invalid(`${param}.tools`, `Invalid value for '${param}.tools': expected an array of function tools.`);
        tool.tools.forEach((inner: unknown, j) => {
          const innerParam = `${param}.tools[${j}]`;
          const fn = asObject(inner, innerParam) as ResponsesToolWire;
          if (fn.type !== 'function' && fn.type !== undefined) throw unsupportedTool(`${innerParam}.type`, `A namespace may only hold function tools, not '${String(fn.type)}'.`);
          builder.addFunction(fn, innerParam, namespace);
        });
        break;
      }
      case 'custom':
        builder.addCustom(tool.name, tool.description, tool.format, param);
        break;
      default:
        builder.addOther(tool.type, param);
    }
  });
  return builder.build();
}

/** One tool as it arrives in a Chat Completions body. */
interface ChatToolWire {
  readonly type?: unknown;
  readonly function?: ResponsesToolWire;
  readonly custom?: { readonly name?: unknown; readonly description?: unknown; readonly format?: unknown };
}

/** Checks a Chat Completions `tools` array: `function` and `custom` tools; other types follow the hosted-tool policy. */
export function parseChatTools(tools: readonly unknown[], policy: HostedToolPolicy): ToolTable {
  const builder = new ToolTableBuilder(policy);
  tools.forEach((raw, i) => {
    const param = `tools[${i}]`;
    const tool = asObject(raw, param) as ChatToolWire;
    if (tool.type === 'function') builder.addFunction(asObject(tool.function, `${param}.function`) as ResponsesToolWire, `${param}.function`, undefined);
    else if (tool.type === 'custom') {
      const custom = asObject(tool.custom, `${param}.custom`) as ChatToolWire['custom'] & object;
      builder.addCustom(custom.name, custom.description, custom.format, `${param}.custom`);
    } else builder.addOther(tool.type, param);
  });
  return builder.build();
}

class ToolTableBuilder {
  readonly #policy: HostedToolPolicy;
  readonly #specs: ToolSpec[] = [];
  readonly #byModelName = new Map<string, WireTool>();
  readonly #ignored: string[] = [];

  constructor(policy: HostedToolPolicy) {
    this.#policy = policy;
  }

  addFunction(tool: ResponsesToolWire, param: string, namespace: string | undefined): void {
    const name = requireName(tool.name, `${param}.name`);
    const parameters = tool.parameters ?? undefined;
    if (parameters !== undefined && (typeof parameters !== 'object' || Array.isArray(parameters))) {
      throw invalid(`${param}.parameters`, `Invalid value for '${param}.parameters': expected a JSON Schema object.`);
    }
    this.#add({ name: toModelToolName(name, namespace), description: optionalString(tool.description, `${param}.description`), parameters: parameters as Record<string, unknown> | undefined }, { type: 'function', name, namespace }, `${param}.name`);
  }

  addCustom(rawName: unknown, description: unknown, format: unknown, param: string): void {
    const name = requireName(rawName, `${param}.name`);
    const inputFormat = parseCustomFormat(format, `${param}.format`);
    this.#add(
      {
        name,
        description: optionalString(description, `${param}.description`),
        parameters: { type: 'object', properties: { input: { type: 'string', description: 'The raw input of the tool (free text, not JSON).' } }, required: ['input'] },
        custom: { format: inputFormat },
      },
      { type: 'custom', name },
      `${param}.name`,
    );
  }

  addOther(type: unknown, param: string): void {
    if (typeof type === 'string' && hostedToolTypes.has(type)) {
      if (this.#policy === 'ignore') {
        this.#ignored.push(type);
        return;
      }
      throw unsupportedTool(`${param}.type`, `Hosted tool '${type}' is not available on this server.`);
    }
    throw unsupportedTool(`${param}.type`, `Unknown tool type '${String(type)}'.`);
  }

  build(): ToolTable {
    return { specs: this.#specs, byModelName: this.#byModelName, ignoredHosted: this.#ignored };
  }

  #add(spec: ToolSpec, wire: WireTool, param: string): void {
    if (this.#byModelName.has(spec.name)) throw invalid(param, `Duplicate tool name '${spec.name}'.`);
    this.#specs.push(spec);
    this.#byModelName.set(spec.name, wire);
  }
}

/** A custom tool's `format`: free text, or a grammar in one of the syntaxes OpenAI defines. */
function parseCustomFormat(format: unknown, param: string): CustomToolFormat {
  if (format === undefined || format === null) return { type: 'text' };
  const outer = asObject(format, param) as { type?: unknown; syntax?: unknown; definition?: unknown; grammar?: unknown };
  if (outer.type === 'text') return { type: 'text' };
  if (outer.type !== 'grammar') throw invalid(`${param}.type`, `Invalid value for '${param}.type': expected text or grammar.`);
  // Responses puts syntax and definition on the format; Chat Completions nests them in `grammar`.
  const isNested = outer.grammar !== undefined;
  if (isNested) param = `${param}.grammar`;
  const f = (isNested ? asObject(outer.grammar, param) : outer) as { syntax?: unknown; definition?: unknown };
  if (f.syntax !== 'lark' && f.syntax !== 'regex') throw invalid(`${param}.syntax`, `Invalid value for '${param}.syntax': expected lark or regex.`);
  if (typeof f.definition !== 'string' || f.definition.length === 0) throw new FlintError('FLINT_ERR_MISSING_PARAM', { param: `${param}.definition` });
  return { type: 'grammar', syntax: f.syntax, definition: f.definition };
}

function asObject(value: unknown, param: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(param, `Invalid value for '${param}': expected an object.`);
  return value as Record<string, unknown>;
}

function requireName(value: unknown, param: string): string {
  if (value === undefined || value === null || value === '') throw new FlintError('FLINT_ERR_MISSING_PARAM', { param });
  if (typeof value !== 'string' || value.length > 256) throw invalid(param, `Invalid value for '${param}': expected a name of at most 256 characters.`);
  return value;
}

function optionalString(value: unknown, param: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(param, `Invalid value for '${param}': expected a string.`);
  return value;
}

function invalid(param: string, detail: string): FlintError {
  return new FlintError('FLINT_ERR_INVALID_VALUE', { param, details: { detail } });
}

function unsupportedTool(param: string, detail: string): FlintError {
  return new FlintError('FLINT_ERR_UNSUPPORTED_TOOL', { param, details: { detail } });
}

import { FlintError } from '../../errors/FlintError.js';
import type { ChatMessage, ToolCall } from '../../core/types.js';
import { createId } from '../../utils/ids.js';
import { toCustomArguments, toModelToolName } from '../tools.js';

/** An output text part as it appears on the wire. */
export interface OutputTextPart {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: unknown[];
}

/** A message item (input or output). */
export interface MessageItem {
  type: 'message';
  id: string;
  role: 'user' | 'assistant' | 'system' | 'developer';
  status?: 'in_progress' | 'completed' | 'incomplete';
  content: Array<{ type: 'input_text'; text: string } | OutputTextPart>;
}

/** A function call item made by the model. */
export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  /** The `namespace` tool the function belongs to, if any. */
  namespace?: string;
  arguments: string;
  status?: 'in_progress' | 'completed' | 'incomplete';
}

/** A call of a custom (free-text) tool made by the model. */
export interface CustomToolCallItem {
  type: 'custom_tool_call';
  id: string;
  call_id: string;
  name: string;
  input: string;
  status?: 'in_progress' | 'completed' | 'incomplete';
}

/** The result of a custom tool call, sent by the client. */
export interface CustomToolCallOutputItem {
  type: 'custom_tool_call_output';
  id: string;
  call_id: string;
  output: string;
}

/** The model's thought before its answer; `encrypted_content` is sealed by Flint and opens to its exact text. */
export interface ReasoningItem {
  type: 'reasoning';
  id: string;
  summary: Array<{ type: 'summary_text'; text: string }>;
  content?: Array<{ type: 'reasoning_text'; text: string }>;
  encrypted_content?: string | null;
  status?: 'in_progress' | 'completed' | 'incomplete';
}

/** A summary of the conversation so far, made by compaction; sealed like reasoning. */
export interface CompactionItem {
  type: 'compaction';
  id: string;
  encrypted_content: string;
}

/** The result of a function call, sent by the client. */
export interface FunctionCallOutputItem {
  type: 'function_call_output';
  id: string;
  call_id: string;
  output: string;
  status?: 'completed';
}

/** Every item Flint keeps in a conversation. */
export type ConversationItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | CustomToolCallItem | CustomToolCallOutputItem | ReasoningItem | CompactionItem;

/** Item types produced by hosted tools Flint does not run: dropped from the input, like the tools themselves. */
const hostedCallItems = new Set([
  'web_search_call',
  'file_search_call',
  'code_interpreter_call',
  'image_generation_call',
  'computer_call',
  'computer_call_output',
  'local_shell_call',
  'local_shell_call_output',
  'mcp_list_tools',
  'mcp_call',
  'mcp_approval_request',
  'mcp_approval_response',
  'tool_search_call',
  'tool_search_output',
]);

/** A reference to an item of a stored response (`{"type": "item_reference", "id"}`), resolved before rendering. */
export interface ItemReference {
  type: 'item_reference';
  id: string;
}

/** What an input item can be before references are resolved. */
export type InputItem = ConversationItem | ItemReference;

/** Input items, and whether the last one asked for compaction (`{"type": "compaction_trigger"}`). */
export interface ParsedInput {
  readonly items: InputItem[];
  readonly isCompactionRequested: boolean;
}

/**
 * Checks untrusted `input` (a string or an item array) and returns normalized items with ids.
 * Reasoning items are dropped (this model produces none); unsupported items and parts are 400s
 * naming `input[i]...`.
 */
export function parseInputItems(input: unknown): ParsedInput {
  if (input === undefined || input === null) return { items: [], isCompactionRequested: false };
  if (typeof input === 'string') return { items: [{ type: 'message', id: createId('msg_'), role: 'user', content: [{ type: 'input_text', text: input }] }], isCompactionRequested: false };
  if (!Array.isArray(input)) throw invalid('input', "Invalid value for 'input': expected a string or an array of items.");
  const items: InputItem[] = [];
  let isCompactionRequested = false;
  input.forEach((raw: unknown, i) => {
    const param = `input[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw invalid(param, `Invalid value for '${param}': expected an object.`);
    const item = raw as Record<string, unknown>;
    const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
    switch (type) {
      case 'message':
        items.push(parseMessage(item, param));
        break;
      case 'function_call': {
        const namespace = typeof item.namespace === 'string' && item.namespace.length > 0 ? item.namespace : undefined;
        items.push({
          type: 'function_call',
          id: itemId(item, 'fc_'),
          call_id: requireString(item.call_id, `${param}.call_id`),
          name: requireString(item.name, `${param}.name`),
          ...(namespace ? { namespace } : {}),
          arguments: requireString(item.arguments, `${param}.arguments`),
          status: 'completed',
        });
        break;
      }
      case 'custom_tool_call':
        items.push({
          type: 'custom_tool_call',
          id: itemId(item, 'ctc_'),
          call_id: requireString(item.call_id, `${param}.call_id`),
          name: requireString(item.name, `${param}.name`),
          input: requireString(item.input, `${param}.input`),
          status: 'completed',
        });
        break;
      case 'custom_tool_call_output':
        items.push({
          type: 'custom_tool_call_output',
          id: itemId(item, 'ctco_'),
          call_id: requireString(item.call_id, `${param}.call_id`),
          output: outputText(item.output, `${param}.output`),
        });
        break;
      case 'reasoning':
        // Only Flint's own sealed thoughts can be rendered back; anything else is dropped, never an error.
        if (typeof item.encrypted_content === 'string' && item.encrypted_content.length > 0) {
          items.push({ type: 'reasoning', id: itemId(item, 'rs_'), summary: [], encrypted_content: item.encrypted_content });
        }
        break;
      case 'compaction':
      case 'compaction_summary':
        if (typeof item.encrypted_content === 'string' && item.encrypted_content.length > 0) {
          items.push({ type: 'compaction', id: itemId(item, 'cmp_'), encrypted_content: item.encrypted_content });
        }
        break;
      case 'item_reference':
        items.push({ type: 'item_reference', id: requireString(item.id, `${param}.id`) });
        break;
      case 'compaction_trigger':
        if (i !== input.length - 1) throw invalid(param, `Invalid value for '${param}': a compaction_trigger must be the last input item.`);
        isCompactionRequested = true;
        break;
      case 'function_call_output':
        items.push({
          type: 'function_call_output',
          id: itemId(item, 'fco_'),
          call_id: requireString(item.call_id, `${param}.call_id`),
          output: outputText(item.output, `${param}.output`),
          status: 'completed',
        });
        break;
      default:
        if (typeof type === 'string' && hostedCallItems.has(type)) break;
        throw invalid(`${param}.type`, `Invalid value for '${param}.type': '${String(type)}' is not a supported input item type.`);
    }
  });
  return { items, isCompactionRequested };
}

function parseMessage(item: Record<string, unknown>, param: string): MessageItem {
  const role = item.role;
  if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer') {
    throw invalid(`${param}.role`, `Invalid value for '${param}.role': expected one of user, assistant, system, developer.`);
  }
  const content: MessageItem['content'] = [];
  if (typeof item.content === 'string') {
    content.push(role === 'assistant' ? { type: 'output_text', text: item.content, annotations: [], logprobs: [] } : { type: 'input_text', text: item.content });
  } else if (Array.isArray(item.content)) {
    item.content.forEach((part: unknown, j) => {
      const p = part as Record<string, unknown> | null;
      const partParam = `${param}.content[${j}]`;
      if (p?.type === 'input_text' && typeof p.text === 'string') content.push({ type: 'input_text', text: p.text });
      else if (p?.type === 'output_text' && typeof p.text === 'string') content.push({ type: 'output_text', text: p.text, annotations: [], logprobs: [] });
      else if (p?.type === 'refusal' && typeof p.refusal === 'string') content.push({ type: 'output_text', text: p.refusal, annotations: [], logprobs: [] });
      else throw invalid(partParam, `Invalid value for '${partParam}': content parts of type '${String(p?.type)}' are not supported by this text-only model.`);
    });
  } else throw invalid(`${param}.content`, `Invalid value for '${param}.content': expected a string or an array of content parts.`);
  return { type: 'message', id: itemId(item, 'msg_'), role, status: 'completed', content };
}

/** The client's id for an item, or a fresh one. */
function itemId(item: Record<string, unknown>, prefix: string): string {
  return typeof item.id === 'string' ? item.id : createId(prefix);
}

function outputText(value: unknown, param: string): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    return value
      .map((p: unknown, j) => {
        const part = p as { type?: unknown; text?: unknown } | null;
        if ((part?.type === 'input_text' || part?.type === 'output_text') && typeof part.text === 'string') return part.text;
        // A text-only model cannot see images a tool returned; say so rather than fail the turn.
        if (part?.type === 'input_image' || part?.type === 'input_file') return `[${part.type === 'input_image' ? 'image' : 'file'} omitted: this model reads text only]`;
        throw invalid(`${param}[${j}]`, `Invalid value for '${param}[${j}]': only input_text parts are supported.`);
      })
      .join('');
  }
  throw invalid(param, `Invalid value for '${param}': expected a string.`);
}

function requireString(value: unknown, param: string): string {
  if (typeof value !== 'string') {
    if (value === undefined) throw new FlintError('FLINT_ERR_MISSING_PARAM', { param });
    throw invalid(param, `Invalid value for '${param}': expected a string.`);
  }
  return value;
}

function invalid(param: string, detail: string): FlintError {
  return new FlintError('FLINT_ERR_INVALID_VALUE', { param, details: { detail } });
}

/** Opens sealed contents (reasoning, compaction); undefined when the seal is not Flint's or is damaged. */
export interface ItemOpener {
  openReasoning(sealed: string): string | undefined;
  openCompaction(sealed: string): string | undefined;
}

/** How a compaction summary is shown to the model: fixed, so every later turn renders it identically. */
export const compactionPreamble = 'Summary of the conversation so far (earlier turns were compacted):\n\n';

/**
 * Renders a conversation for the chat template: instructions first, function calls attached to
 * the assistant turn that made them, their outputs as tool messages, a sealed thought on the
 * assistant turn that follows it, a compaction summary as a user message. Deterministic, so a
 * continuation renders as a byte-identical extension of the previous turn (KV cache reuse).
 */
export function toChatMessages(instructions: string | undefined, items: readonly ConversationItem[], opener: ItemOpener): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (instructions) messages.push({ role: 'system', content: instructions });
  const knownCalls = new Set<string>();
  let reasoning: string | undefined;
  const addCall = (call: ToolCall) => {
    knownCalls.add(call.id);
    const last = messages.at(-1);
    if (last?.role === 'assistant' && reasoning === undefined) messages[messages.length - 1] = { ...last, toolCalls: [...(last.toolCalls ?? []), call] };
    else messages.push({ role: 'assistant', content: '', toolCalls: [call], ...takeReasoning() });
  };
  const takeReasoning = (): { reasoning?: string } => {
    const taken = reasoning;
    reasoning = undefined;
    return taken === undefined ? {} : { reasoning: taken };
  };
  /** A thought with no answer after it (a response cut short) is still an assistant turn of its own. */
  const flushReasoning = () => {
    if (reasoning !== undefined) messages.push({ role: 'assistant', content: '', ...takeReasoning() });
  };
  items.forEach((item, i) => {
    switch (item.type) {
      case 'message':
        if (item.role === 'assistant') messages.push({ role: 'assistant', content: item.content.map((c) => c.text).join(''), ...takeReasoning() });
        else {
          flushReasoning();
          messages.push({ role: item.role, content: item.content.map((c) => c.text).join('') });
        }
        break;
      case 'reasoning':
        reasoning = item.encrypted_content ? opener.openReasoning(item.encrypted_content) : undefined;
        break;
      case 'compaction': {
        flushReasoning();
        const summary = opener.openCompaction(item.encrypted_content);
        if (summary !== undefined) messages.push({ role: 'user', content: compactionPreamble + summary });
        break;
      }
      case 'function_call':
        addCall({ id: item.call_id, name: toModelToolName(item.name, item.namespace), arguments: item.arguments });
        break;
      case 'custom_tool_call':
        addCall({ id: item.call_id, name: item.name, arguments: toCustomArguments(item.input) });
        break;
      case 'function_call_output':
      case 'custom_tool_call_output':
        if (!knownCalls.has(item.call_id)) {
          throw invalid('input', `No tool call with call_id '${item.call_id}' was found for the ${item.type} at input[${i}].`);
        }
        messages.push({ role: 'tool', content: item.output, toolCallId: item.call_id });
        break;
    }
  });
  flushReasoning();
  return messages;
}

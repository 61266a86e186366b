import { FlintError } from '../../errors/FlintError.js';
import type { ChatMessage, ToolCall } from '../../core/types.js';
import { createId } from '../../utils/ids.js';

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
  arguments: string;
  status?: 'in_progress' | 'completed' | 'incomplete';
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
export type ConversationItem = MessageItem | FunctionCallItem | FunctionCallOutputItem;

/**
 * Checks untrusted `input` (a string or an item array) and returns normalized items with ids.
 * Reasoning items are dropped (this model produces none); unsupported items and parts are 400s
 * naming `input[i]...`.
 */
export function parseInputItems(input: unknown): ConversationItem[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') return [{ type: 'message', id: createId('msg_'), role: 'user', content: [{ type: 'input_text', text: input }] }];
  if (!Array.isArray(input)) throw invalid('input', "Invalid value for 'input': expected a string or an array of items.");
  const items: ConversationItem[] = [];
  input.forEach((raw: unknown, i) => {
    const param = `input[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw invalid(param, `Invalid value for '${param}': expected an object.`);
    const item = raw as Record<string, unknown>;
    const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
    switch (type) {
      case 'message':
        items.push(parseMessage(item, param));
        break;
      case 'function_call':
        items.push({
          type: 'function_call',
          id: typeof item.id === 'string' ? item.id : createId('fc_'),
          call_id: requireString(item.call_id, `${param}.call_id`),
          name: requireString(item.name, `${param}.name`),
          arguments: requireString(item.arguments, `${param}.arguments`),
          status: 'completed',
        });
        break;
      case 'function_call_output':
        items.push({
          type: 'function_call_output',
          id: typeof item.id === 'string' ? item.id : createId('fco_'),
          call_id: requireString(item.call_id, `${param}.call_id`),
          output: outputText(item.output, `${param}.output`),
          status: 'completed',
        });
        break;
      case 'reasoning':
        break;
      default:
        throw invalid(`${param}.type`, `Invalid value for '${param}.type': '${String(type)}' is not a supported input item type.`);
    }
  });
  return items;
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
  return { type: 'message', id: typeof item.id === 'string' ? item.id : createId('msg_'), role, status: 'completed', content };
}

function outputText(value: unknown, param: string): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    return value
      .map((p: unknown, j) => {
        const part = p as { type?: unknown; text?: unknown } | null;
        if (part?.type === 'input_text' && typeof part.text === 'string') return part.text;
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

/**
 * Renders a conversation for the chat template: instructions first, function calls attached to
 * the assistant turn that made them, their outputs as tool messages. Deterministic, so a
 * continuation renders as a byte-identical extension of the previous turn (KV cache reuse).
 */
export function toChatMessages(instructions: string | undefined, items: readonly ConversationItem[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (instructions) messages.push({ role: 'system', content: instructions });
  const knownCalls = new Set<string>();
  items.forEach((item, i) => {
    if (item.type === 'message') {
      messages.push({ role: item.role, content: item.content.map((c) => c.text).join('') });
    } else if (item.type === 'function_call') {
      knownCalls.add(item.call_id);
      const call: ToolCall = { id: item.call_id, name: item.name, arguments: item.arguments };
      const last = messages.at(-1);
      if (last?.role === 'assistant') messages[messages.length - 1] = { ...last, toolCalls: [...(last.toolCalls ?? []), call] };
      else messages.push({ role: 'assistant', content: '', toolCalls: [call] });
    } else {
      if (!knownCalls.has(item.call_id)) {
        throw invalid('input', `No function call with call_id '${item.call_id}' was found for the function_call_output at input[${i}].`);
      }
      messages.push({ role: 'tool', content: item.output, toolCallId: item.call_id });
    }
  });
  return messages;
}

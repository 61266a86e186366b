import type { ToolCall } from '../core/types.js';
import { createId } from '../utils/ids.js';
import { partialSuffix } from '../utils/partialSuffix.js';

/** How the chat template marks a tool call in generated text, e.g. `<tool_call>` … `</tool_call>`. */
export interface ToolCallSyntax {
  readonly start: string;
  readonly end: string;
}

/** What a chunk of generated text turned out to be. */
export type DetectorOutput = { readonly type: 'text'; readonly text: string } | { readonly type: 'call'; readonly call: ToolCall };

/**
 * Splits generated text into plain text and tool calls written in the template's syntax. Text
 * that could be the start of a call marker is held back, so a marker never leaks into deltas.
 * A call whose body is not `{"name": <offered tool>, "arguments": {...}}` is malformed and is
 * returned as plain text instead, so a confused model degrades to text, never to an error.
 */
export class ToolCallDetector {
  readonly #syntax: ToolCallSyntax;
  readonly #tools: ReadonlySet<string>;
  #buffer = '';
  #isInCall = false;
  #calls = 0;

  constructor(syntax: ToolCallSyntax, toolNames: readonly string[]) {
    this.#syntax = syntax;
    this.#tools = new Set(toolNames);
  }

  /** Calls found so far. */
  get calls(): number {
    return this.#calls;
  }

  push(text: string): DetectorOutput[] {
    this.#buffer += text;
    const out: DetectorOutput[] = [];
    for (;;) {
      if (!this.#isInCall) {
        const at = this.#buffer.indexOf(this.#syntax.start);
        if (at === -1) {
          const keep = partialSuffix(this.#buffer, this.#syntax.start);
          this.#emitText(out, this.#buffer.slice(0, this.#buffer.length - keep));
          this.#buffer = this.#buffer.slice(this.#buffer.length - keep);
          return out;
        }
        this.#emitText(out, this.#buffer.slice(0, at));
        this.#buffer = this.#buffer.slice(at);
        this.#isInCall = true;
      }
      const end = this.#buffer.indexOf(this.#syntax.end, this.#syntax.start.length);
      if (end === -1) return out;
      const raw = this.#buffer.slice(0, end + this.#syntax.end.length);
      this.#buffer = this.#buffer.slice(raw.length);
      this.#isInCall = false;
      out.push(this.#toOutput(raw, raw.slice(this.#syntax.start.length, end)));
    }
  }

  /** End of generation: an unfinished call is returned as text (or parsed, if its body is complete). */
  flush(): DetectorOutput[] {
    const rest = this.#buffer;
    this.#buffer = '';
    if (rest.length === 0) return [];
    if (this.#isInCall) {
      this.#isInCall = false;
      return [this.#toOutput(rest, rest.slice(this.#syntax.start.length))];
    }
    return [{ type: 'text', text: rest }];
  }

  #toOutput(raw: string, body: string): DetectorOutput {
    const call = parseCallBody(body, this.#tools);
    if (!call) return { type: 'text', text: raw };
    this.#calls++;
    return { type: 'call', call };
  }

  #emitText(out: DetectorOutput[], text: string): void {
    // Whitespace between parallel calls is part of the call syntax, not an answer.
    if (text.length === 0 || (this.#calls > 0 && text.trim().length === 0)) return;
    out.push({ type: 'text', text });
  }
}

/** Parses `{"name": ..., "arguments": ...}` (the Qwen/Hermes form) into a call, or undefined. */
export function parseCallBody(body: string, tools: ReadonlySet<string>): ToolCall | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.trim());
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { name, arguments: args } = parsed as { name?: unknown; arguments?: unknown };
  if (typeof name !== 'string' || !tools.has(name)) return undefined;
  const argsObject = typeof args === 'string' ? safeParse(args) : args ?? {};
  if (typeof argsObject !== 'object' || argsObject === null || Array.isArray(argsObject)) return undefined;
  return { id: createId('call_'), name, arguments: JSON.stringify(argsObject) };
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}


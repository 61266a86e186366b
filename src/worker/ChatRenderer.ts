import { LlamaText, SpecialToken, SpecialTokensText, type ChatHistoryItem, type ChatModelFunctions, type ChatWrapper, type GbnfJsonSchema, type LlamaTextValue, type Token, type Tokenizer } from 'node-llama-cpp';
import type { ChatMessage, ToolSpec } from '../core/types.js';
import { sameMessage } from '../core/sameMessage.js';
import type { ThoughtSyntax } from './ThoughtSplitter.js';
import { tokenizeValues } from './tokenizeInChunks.js';

/** How a chat prompt was made: from the memo as it was, by rendering only new messages, or whole. */
export type RenderMode = 'reused' | 'incremental' | 'full';
/** Why a prompt was rendered whole. */
export type FullRenderReason = 'cold' | 'diverged' | 'template';

/** A rendered chat prompt and what the next turn needs to render only its new messages. */
export interface RenderedChat {
  readonly tokens: Token[];
  /** The messages and tools it was rendered from. */
  readonly messages: readonly ChatMessage[];
  readonly toolsKey: string;
  /** node-llama-cpp chat history of `messages` (without the generation prompt). */
  readonly history: readonly ChatHistoryItem[];
  /** Tokens before the split point, which stay the same whatever is appended. */
  readonly splitTokens: number;
  /** The rendered values after the split point (without the opened thought, if one is appended). */
  readonly afterSplit: readonly LlamaTextValue[];
  /** Stop triggers of the template state. */
  readonly stopGenerationTriggers: readonly LlamaText[];
  /** The thought prefix the template's generation prompt ends with (or that was appended). */
  readonly openedThought: boolean;
}

export interface RenderResult {
  readonly rendered: RenderedChat;
  readonly mode: RenderMode;
  readonly reason?: FullRenderReason;
}

interface ThoughtSettings {
  readonly syntax: ThoughtSyntax;
  readonly prefix: LlamaText;
  readonly isOpenedByTemplate: boolean;
}

/**
 * Renders chat prompts through the model's chat wrapper, incrementally where the template allows:
 * a turn that continues the previous prompt of its slot (the same messages, then the model's
 * answer and what came after it) renders and tokenizes only the new messages. The template is
 * rendered for the new messages behind a short stand-in history (the system message and the
 * message before the answer), and the stand-in's own rendering is cut off again; the tokens
 * before the last special token of the previous prompt are kept as they are.
 *
 * That is exact only for templates that render each message on its own (ChatML, Llama 3,
 * Qwen...). Whether this template does is checked once, at load, against whole renderings of a
 * set of conversations; a template that fails is always rendered whole (reason `template`).
 */
export class ChatRenderer {
  readonly #wrapper: ChatWrapper;
  readonly #tokenizer: Tokenizer;
  readonly #thought: ThoughtSettings | undefined;
  readonly #toHistory: (messages: readonly ChatMessage[]) => ChatHistoryItem[];
  /** Whether incremental rendering matched whole rendering on every probe conversation. */
  #isIncremental = false;
  /** Why the probe found the template not incremental. */
  #probeFailure: string | undefined;

  constructor(wrapper: ChatWrapper, tokenizer: Tokenizer, thought: ThoughtSettings | undefined, toHistory: (messages: readonly ChatMessage[]) => ChatHistoryItem[]) {
    this.#wrapper = wrapper;
    this.#tokenizer = tokenizer;
    this.#thought = thought;
    this.#toHistory = toHistory;
  }

  get isIncremental(): boolean {
    return this.#isIncremental;
  }

  /** Why the template is rendered whole (set when the probe failed). */
  get probeFailure(): string | undefined {
    return this.#probeFailure;
  }

  /** Compares incremental with whole rendering on probe conversations; enables incremental rendering if all match. */
  async probe(signal: AbortSignal): Promise<boolean> {
    this.#isIncremental = true;
    try {
      for (const [c, { messages, tools }] of probeConversations(this.#thought !== undefined).entries()) {
        const key = toolsKey(tools);
        const cuts = messages.map((_, i) => i).filter((i) => i > 0 && isCutPoint(messages, i));
        // Every continuation from every earlier prompt, and a chain of continuations (each from the last).
        let chained: RenderedChat | undefined;
        for (let k = 0; k < cuts.length; k++) {
          const cut = cuts[k];
          const base = (await this.#full(messages.slice(0, cut), tools, signal)).rendered;
          if (chained && !sameTokens(chained.tokens, base.tokens)) throw new Error('chained rendering differs');
          for (let end = cut + 1; end <= messages.length; end++) {
            if (!isTurnEnd(messages, end)) continue;
            const whole = await this.#full(messages.slice(0, end), tools, signal);
            const incremental = await this.#incremental(base, messages.slice(0, end), tools, key, signal);
            if (!incremental || !sameTokens(incremental.tokens, whole.tokens)) {
              const at = incremental ? firstDifference(incremental.tokens, whole.tokens) : -1;
              const show = (tokens: readonly Token[]) => JSON.stringify(this.#tokenizer.detokenize(tokens.slice(Math.max(0, at - 8), at + 8), true));
              throw new Error(`probe conversation ${c}, messages ${cut}..${end}: ${incremental ? `tokens differ at ${at}: ${show(incremental.tokens)} rendered whole ${show(whole.tokens)}` : 'not a continuation of its start'}`);
            }
          }
          const next = cuts[k + 1];
          if (next !== undefined) chained = (await this.#incremental(chained ?? base, messages.slice(0, next), tools, key, signal))?.rendered;
          if (next !== undefined && !chained) throw new Error('no chained rendering');
        }
      }
    } catch (err) {
      this.#isIncremental = false;
      this.#probeFailure = (err as Error).message;
    }
    return this.#isIncremental;
  }

  /** The prompt of `messages`, from `memo` (the slot's previous prompt) where possible. */
  async render(messages: readonly ChatMessage[], tools: readonly ToolSpec[], memo: RenderedChat | undefined, signal: AbortSignal): Promise<RenderResult> {
    const key = toolsKey(tools);
    if (memo && memo.toolsKey === key) {
      if (sameMessages(memo.messages, messages, messages.length) && memo.messages.length === messages.length) {
        return { rendered: { ...memo, messages }, mode: 'reused' };
      }
      if (this.#isIncremental) {
        const next = await this.#incremental(memo, messages, tools, key, signal);
        if (next) return { rendered: next.rendered, mode: 'incremental' };
      }
    }
    const reason: FullRenderReason = !memo ? 'cold' : !this.#isIncremental && memo.toolsKey === key && isContinuation(memo.messages, messages) ? 'template' : 'diverged';
    return { rendered: (await this.#full(messages, tools, signal)).rendered, mode: 'full', reason };
  }

  async #full(messages: readonly ChatMessage[], tools: readonly ToolSpec[], signal: AbortSignal) {
    const history = this.#toHistory(messages);
    const state = this.#wrapper.generateContextState({ chatHistory: [...history, { type: 'model', response: [] }], availableFunctions: toFunctions(tools) });
    const values = state.contextText.values;
    const { tokens, split } = await tokenizeValues(values, this.#tokenizer, signal, false);
    const splitTokens = split?.tokens ?? 0;
    const afterSplit = values.slice(split ? split.valueIndex + 1 : 0);
    return this.#finish({ messages, toolsKey: toolsKey(tools), history, stopGenerationTriggers: state.stopGenerationTriggers, tokens, splitTokens, afterSplit }, values, signal);
  }

  /**
   * Renders only what `messages` adds to `memo.messages`; undefined when `messages` does not
   * continue the memo in a way the template renders on its own (then render whole).
   */
  async #incremental(memo: RenderedChat, messages: readonly ChatMessage[], tools: readonly ToolSpec[], key: string, signal: AbortSignal) {
    if (!isContinuation(memo.messages, messages)) return undefined;
    const tail = messages.slice(memo.messages.length);
    const tailHistory = this.#toHistory(tail);
    const history = memo.history;
    if (tailHistory[0]?.type !== 'model' || history.length === 0) return undefined;
    // The stand-in history: the system message (tools render into it) and the two items before the answer
    // (the last may be the model's own turn when it ends with tool results: the answer continues it).
    const stub: ChatHistoryItem[] = history.slice(-2);
    if (history.length > 2 && history[0].type === 'system') stub.unshift(history[0]);
    const functions = toFunctions(tools);
    const stubText = this.#wrapper.generateContextState({ chatHistory: [...stub, { type: 'model', response: [] }], availableFunctions: functions }).contextText;
    const state = this.#wrapper.generateContextState({ chatHistory: [...stub, ...tailHistory, { type: 'model', response: [] }], availableFunctions: functions });
    const added = valuesAfter(state.contextText.values, stubText.values);
    if (!added) return undefined;
    // Everything after the memo's split point is tokenized again, now followed by the new values.
    const rest = LlamaText([...memo.afterSplit, ...added]).values;
    const { tokens: restTokens, split } = await tokenizeValues(rest, this.#tokenizer, signal, memo.splitTokens > 0);
    const contextTokens = memo.tokens.slice(0, memo.splitTokens);
    for (const token of restTokens) contextTokens.push(token);
    const splitTokens = split ? memo.splitTokens + split.tokens : memo.splitTokens;
    const afterSplit = split ? rest.slice(split.valueIndex + 1) : rest;
    return this.#finish(
      { messages, toolsKey: key, history: [...memo.history, ...tailHistory], stopGenerationTriggers: state.stopGenerationTriggers, tokens: contextTokens, splitTokens, afterSplit },
      rest,
      signal,
    );
  }

  /**
   * Appends the opened thought where the template's generation prompt opens one the wrapper
   * leaves out. `end`: values the rendered text ends with.
   */
  async #finish(context: Omit<RenderedChat, 'openedThought'>, end: readonly LlamaTextValue[], signal: AbortSignal) {
    let tokens = context.tokens;
    let openedThought = false;
    const thought = this.#thought;
    if (thought) {
      const prefix = thought.prefix.toString();
      if (endsWithText(end, prefix)) openedThought = true;
      else if (thought.isOpenedByTemplate) {
        openedThought = true;
        const opened = await tokenizeValues(LlamaText([...context.afterSplit, thought.prefix]).values, this.#tokenizer, signal, context.splitTokens > 0);
        tokens = context.tokens.slice(0, context.splitTokens);
        for (const token of opened.tokens) tokens.push(token);
      }
    }
    const afterSplitTokens = tokens.slice(context.splitTokens);
    return { rendered: { ...context, tokens, openedThought } satisfies RenderedChat, tokens, afterSplitTokens };
  }
}

/** Whether the text of `values` ends with `suffix` (looking only at as many values from the end as it takes). */
function endsWithText(values: readonly LlamaTextValue[], suffix: string): boolean {
  let text = '';
  for (let i = values.length - 1; i >= 0 && text.length < suffix.length; i--) text = String(values[i]) + text;
  return text.endsWith(suffix);
}

/** `values` minus the leading `prefix` values (the last of which may be a prefix of its counterpart); undefined if they do not start so. */
function valuesAfter(values: readonly LlamaTextValue[], prefix: readonly LlamaTextValue[]): LlamaTextValue[] | undefined {
  if (prefix.length === 0 || values.length < prefix.length) return undefined;
  for (let i = 0; i < prefix.length - 1; i++) if (!sameValue(values[i], prefix[i])) return undefined;
  const last = prefix.length - 1;
  const a = values[last];
  const b = prefix[last];
  const rest = values.slice(prefix.length);
  if (typeof a === 'string' && typeof b === 'string') {
    if (!a.startsWith(b)) return undefined;
    return a.length > b.length ? [a.slice(b.length), ...rest] : rest;
  }
  if (a instanceof SpecialTokensText && b instanceof SpecialTokensText) {
    if (!a.value.startsWith(b.value)) return undefined;
    return a.value.length > b.value.length ? [new SpecialTokensText(a.value.slice(b.value.length)), ...rest] : rest;
  }
  return sameValue(a, b) ? rest : undefined;
}

function sameValue(a: LlamaTextValue, b: LlamaTextValue): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a instanceof SpecialToken && b instanceof SpecialToken) return a.value === b.value;
  if (a instanceof SpecialTokensText && b instanceof SpecialTokensText) return a.value === b.value;
  return false;
}

/**
 * Whether `messages` continues `previous`: all of it, then an assistant message (the answer to
 * the previous prompt's generation prompt), with tool results only for calls made after it.
 */
export function isContinuation(previous: readonly ChatMessage[], messages: readonly ChatMessage[]): boolean {
  const n = previous.length;
  if (n === 0 || messages.length <= n || messages[n].role !== 'assistant' || previous[n - 1].role === 'assistant') return false;
  if (!sameMessages(previous, messages, n)) return false;
  const earlier = new Set<string>();
  for (const m of previous) {
    for (const call of m.toolCalls ?? []) earlier.add(call.id);
    if (m.toolCallId) earlier.add(m.toolCallId);
  }
  for (let i = n; i < messages.length; i++) {
    const m = messages[i];
    if (m.toolCallId && earlier.has(m.toolCallId)) return false;
    for (const call of m.toolCalls ?? []) if (earlier.has(call.id)) return false;
  }
  return true;
}

/** Whether the first `count` messages of `a` and `b` are the same (identical objects are not compared further). */
export function sameMessages(a: readonly ChatMessage[], b: readonly ChatMessage[], count: number): boolean {
  if (a.length < count || b.length < count) return false;
  for (let i = 0; i < count; i++) if (!sameMessage(a[i], b[i])) return false;
  return true;
}

function firstDifference(a: readonly Token[], b: readonly Token[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function sameTokens(a: readonly Token[], b: readonly Token[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function toolsKey(tools: readonly ToolSpec[]): string {
  return tools.length === 0 ? '' : JSON.stringify(tools);
}

function toFunctions(tools: readonly ToolSpec[]): ChatModelFunctions | undefined {
  if (tools.length === 0) return undefined;
  return Object.fromEntries(tools.map((t) => [t.name, { description: t.description, params: t.parameters as GbnfJsonSchema | undefined }]));
}

/** A cut at `i` starts an answer: message i is the assistant's, the one before is not. */
function isCutPoint(messages: readonly ChatMessage[], i: number): boolean {
  return messages[i]?.role === 'assistant' && messages[i - 1]?.role !== 'assistant';
}

/** A prompt may end at `i`: after a user, tool or system message. */
function isTurnEnd(messages: readonly ChatMessage[], i: number): boolean {
  return messages[i - 1]?.role !== 'assistant';
}

/** Conversations the probe renders both ways: with and without a system message and tools, calls, results and thoughts. */
function probeConversations(hasThought: boolean): Array<{ messages: ChatMessage[]; tools: ToolSpec[] }> {
  const turns: ChatMessage[] = [
    { role: 'user', content: 'Find the failing test and fix it.' },
    { role: 'assistant', content: 'Let me look at the tests first.' },
    { role: 'user', content: 'Go on.' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'call_a', name: 'read_file', arguments: '{"path":"src/a.ts"}' }] },
    { role: 'tool', toolCallId: 'call_a', content: 'export const a = 1;\n' },
    { role: 'assistant', content: 'Two more files.', toolCalls: [{ id: 'call_b', name: 'read_file', arguments: '{"path":"b.ts"}' }, { id: 'call_c', name: 'grep', arguments: '{"pattern":"slot"}' }] },
    { role: 'tool', toolCallId: 'call_b', content: 'b' },
    { role: 'tool', toolCallId: 'call_c', content: 'no matches' },
    { role: 'user', content: '  Leading spaces, then a newline\n' },
    { role: 'assistant', content: 'Fixed: the slot index was off by one.' },
    { role: 'user', content: 'Thanks.' },
  ];
  const tools: ToolSpec[] = [
    { name: 'read_file', description: 'Reads a file.', parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
    { name: 'grep', parameters: { type: 'object', properties: { pattern: { type: 'string' } } } },
  ];
  const system: ChatMessage = { role: 'system', content: 'You are a coding agent.' };
  const conversations = [
    { messages: [system, ...turns], tools },
    { messages: [system, ...turns], tools: [] },
    { messages: turns, tools },
    { messages: turns, tools: [] },
  ];
  if (hasThought) {
    const thoughtful = turns.map((m) => (m.role === 'assistant' ? { ...m, reasoning: `<think>\nThinking about: ${m.content || 'the call'}\n</think>\n\n` } : m));
    conversations.push({ messages: [system, ...thoughtful], tools }, { messages: thoughtful, tools: [] });
  }
  return conversations;
}

/**
 * The agent loop's conversation: a system prompt and a task, then per turn the model's text
 * followed by a tool call (read_file / run_tests / grep), the tool's output (a few hundred
 * characters of code) and a short user follow-up. The same conversation is expressed three
 * ways: Chat Completions messages, Responses input items, and node-llama-cpp chat history (the
 * mapping Flint's worker applies to chat messages, done natively for the raw side).
 */
import type { ChatHistoryItem } from 'node-llama-cpp';
import { codeText, hashSeed } from './prompts.js';

interface Turn {
  /** What the model generated for this turn (each transport keeps its own). */
  readonly assistantText: string;
  readonly callId: string;
  readonly name: string;
  readonly args: Record<string, string>;
  readonly output: string;
  readonly user: string;
}

const tools = ['read_file', 'run_tests', 'grep'] as const;

export class AgentConversation {
  readonly system: string;
  readonly task: string;
  readonly #seed: number;
  readonly #toolOutputChars: number;
  readonly #turns: Turn[] = [];

  /** `lead` makes the conversation unique (its first words); the rest is deterministic from it. */
  constructor(lead: string, toolOutputChars: number) {
    this.#seed = hashSeed(lead);
    this.#toolOutputChars = toolOutputChars;
    this.system = `${lead} You are a coding agent. Use the tools to inspect the repository, then fix the failing test.`;
    this.task = 'The test scheduler.test.ts fails after the last refactor of the slot table. Find the cause and fix it.';
  }

  get turns(): number {
    return this.#turns.length;
  }

  /** Records the model's reply to the latest request and appends tool call, tool output and follow-up. */
  addTurn(assistantText: string): void {
    const k = this.#turns.length;
    const name = tools[k % tools.length];
    const args: Record<string, string> = name === 'read_file' ? { path: `src/module${k}.ts` } : name === 'grep' ? { pattern: `slot${k}` } : { filter: `case ${k}` };
    this.#turns.push({
      assistantText,
      callId: `call_${k + 1}`,
      name,
      args,
      output: codeText(this.#seed + k + 1, this.#toolOutputChars),
      user: `Turn ${k + 2}: that did not explain it yet; keep looking.`,
    });
  }

  /** Chat Completions `messages` for the next request. */
  chatMessages(): unknown[] {
    const messages: unknown[] = [
      { role: 'system', content: this.system },
      { role: 'user', content: this.task },
    ];
    for (const turn of this.#turns) {
      messages.push(
        {
          role: 'assistant',
          content: turn.assistantText,
          tool_calls: [{ id: turn.callId, type: 'function', function: { name: turn.name, arguments: JSON.stringify(turn.args) } }],
        },
        { role: 'tool', tool_call_id: turn.callId, content: turn.output },
        { role: 'user', content: turn.user },
      );
    }
    return messages;
  }

  /** Responses body fields for the whole conversation (HTTP, no stored state). */
  responsesFull(): Record<string, unknown> {
    const input: unknown[] = [{ type: 'message', role: 'user', content: this.task }];
    for (const turn of this.#turns) {
      input.push({ type: 'message', role: 'assistant', content: turn.assistantText }, ...this.#toolItems(turn));
    }
    return { instructions: this.system, input };
  }

  /**
   * Responses body fields for the next request on a WebSocket: after the first turn, only the
   * new items, chained to the previous response (whose output the server already has).
   */
  responsesIncremental(previousResponseId: string | undefined): Record<string, unknown> {
    const last = this.#turns.at(-1);
    if (!last || previousResponseId === undefined) return this.responsesFull();
    return { instructions: this.system, previous_response_id: previousResponseId, input: this.#toolItems(last) };
  }

  /** node-llama-cpp chat history with the generation prompt, as Flint's worker builds it. */
  rawHistory(): ChatHistoryItem[] {
    const history: ChatHistoryItem[] = [
      { type: 'system', text: this.system },
      { type: 'user', text: this.task },
    ];
    for (const turn of this.#turns) {
      const response: Array<string | { type: 'functionCall'; name: string; params: unknown; result: unknown }> = [];
      if (turn.assistantText) response.push(turn.assistantText);
      response.push({ type: 'functionCall', name: turn.name, params: turn.args, result: turn.output });
      history.push({ type: 'model', response }, { type: 'user', text: turn.user });
    }
    history.push({ type: 'model', response: [] });
    return history;
  }

  #toolItems(turn: Turn): unknown[] {
    return [
      { type: 'function_call', call_id: turn.callId, name: turn.name, arguments: JSON.stringify(turn.args) },
      { type: 'function_call_output', call_id: turn.callId, output: turn.output },
      { type: 'message', role: 'user', content: turn.user },
    ];
  }
}

/** A one-message chat, for the raw side. */
export function userHistory(text: string): ChatHistoryItem[] {
  return [
    { type: 'user', text },
    { type: 'model', response: [] },
  ];
}

/** The same one-message chat, for Chat Completions. */
export function userMessages(text: string): unknown[] {
  return [{ role: 'user', content: text }];
}

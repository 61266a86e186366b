import type { GenerateRequest } from '../core/types.js';
import { StopDetector } from '../utils/StopDetector.js';
import type { PreparedPrompt } from './Engine.js';
import type { SlotSink } from './Slot.js';
import { ThoughtSplitter } from './ThoughtSplitter.js';
import { ToolCallDetector } from './ToolCallDetector.js';

/** What the router learnt of the thought, for the generation's result. */
export interface ThoughtAccount {
  reasoningTokens: number;
  /** The thought's raw text while it is still open at the end (the `done` message carries it). */
  reasoning: string | undefined;
}

/**
 * Routes generated text to the sink: the thought to its own stream, then stop strings and tool
 * calls written in the template's syntax on the answer. Text arrives in pieces of any size (one
 * token's text from node-llama-cpp, a chunk from llama-server); markers split across pieces are
 * held back until they are complete. Used by both kinds of slot.
 */
export class OutputRouter {
  readonly #sink: SlotSink;
  readonly #stops: StopDetector;
  readonly #tools: ToolCallDetector | undefined;
  readonly #thoughts: ThoughtSplitter | undefined;
  readonly #isParallel: boolean;
  readonly #account: ThoughtAccount;

  constructor(request: GenerateRequest, prompt: PreparedPrompt, sink: SlotSink, account: ThoughtAccount, extraStops: readonly string[] = []) {
    this.#sink = sink;
    this.#account = account;
    this.#stops = new StopDetector([...request.stop, ...prompt.templateStops, ...extraStops]);
    this.#tools = prompt.tools ? new ToolCallDetector(prompt.tools.syntax, prompt.tools.names) : undefined;
    this.#thoughts = prompt.thought ? new ThoughtSplitter(prompt.thought.syntax, prompt.thought.openedByPrompt) : undefined;
    this.#isParallel = request.parallelToolCalls !== false;
  }

  /** Whether special tokens must be shown as text for the detectors (`<tool_call>`, `<think>`). */
  get needsSpecialText(): boolean {
    return this.#tools !== undefined || this.#thoughts !== undefined;
  }

  /** Tool calls found so far. */
  get calls(): number {
    return this.#tools?.calls ?? 0;
  }

  /** Routes `text` (`tokens` of output); true once generation must end (a stop string, or a call when parallel calls are off). */
  push(text: string, tokens: number, isFinal = false): boolean {
    const thoughts = this.#thoughts;
    if (!thoughts) return this.#answer(text, tokens, isFinal);
    const wasInThought = thoughts.isInThought;
    if (wasInThought) this.#account.reasoningTokens += tokens;
    let answer = '';
    for (const part of isFinal ? [...thoughts.push(text), ...thoughts.flush()] : thoughts.push(text)) {
      if (part.type === 'thought') this.#sink.onReasoning(part.text, tokens);
      else answer += part.text;
    }
    if (wasInThought && !thoughts.isInThought && thoughts.raw !== undefined) {
      this.#sink.onReasoningEnd(thoughts.raw);
      this.#account.reasoning = undefined;
    } else if (thoughts.isInThought) this.#account.reasoning = thoughts.raw;
    return this.#answer(answer, tokens, isFinal);
  }

  /** Plain text through the stop detector; true once a stop string matched. */
  #text(text: string, tokens: number): boolean {
    const out = this.#stops.push(text);
    if (out.text.length > 0) this.#sink.onDelta(out.text, tokens);
    return out.isStopped;
  }

  #answer(text: string, tokens: number, isFinal: boolean): boolean {
    const tools = this.#tools;
    if (tools) {
      for (const part of isFinal ? [...tools.push(text), ...tools.flush()] : tools.push(text)) {
        if (part.type === 'call') {
          this.#sink.onToolCall(part.call);
          if (!this.#isParallel) return true;
        } else if (this.#text(part.text, tokens)) return true;
      }
    } else if (this.#text(text, tokens)) return true;
    if (isFinal) {
      const tail = this.#stops.flush();
      if (tail.length > 0) this.#sink.onDelta(tail, 0);
    }
    return false;
  }
}

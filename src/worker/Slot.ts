import { LlamaGrammarEvaluationState, type LlamaContextSequence, type LlamaGrammar, type LlamaModel, type Token } from 'node-llama-cpp';
import { FlintError } from '../errors/FlintError.js';
import type { FinishReason, GenerateRequest, GenerationTimings, SamplingOptions, ToolCall, Usage } from '../core/types.js';
import { createId } from '../utils/ids.js';
import type { PreparedPrompt } from './Engine.js';
import { commonPrefix, type SavedPrefixes } from './SavedPrefixes.js';
import { TokenTextDecoder } from './TokenTextDecoder.js';
import { PredictedDecoder } from './PredictedDecoder.js';
import { OutputRouter } from './OutputRouter.js';
import type { DecodeBarrier } from './DecodeBarrier.js';

/** Callbacks through which a slot reports one generation. */
export interface SlotSink {
  /** Of the cached tokens, `restoredTokens` came from a saved prefix and `copiedTokens` from another slot. */
  onStarted(promptTokens: number, cachedTokens: number, restoredTokens: number, copiedTokens: number): void;
  onDelta(text: string, tokens: number): void;
  /** Text of the thought segment. */
  onReasoning(text: string, tokens: number): void;
  /** The thought ended; `raw` is its exact text in the context, markers included. */
  onReasoningEnd(raw: string): void;
  /** Prompt evaluation progress (after each prefill batch). */
  onProgress(evaluatedTokens: number, totalTokens: number): void;
  onToolCall(call: ToolCall): void;
}

/** Decisions made before decoding: grammars and forced tool calls. */
export interface GenerationPlan {
  /** Grammar the whole output must follow (`json_object`, `json_schema`). */
  readonly grammar?: LlamaGrammar;
  /** `tool_choice` required or named: the output is one call, constrained by grammars. */
  readonly forcedCall?: {
    /** Text of the call syntax before the name and between name and arguments. */
    readonly beforeName: string;
    readonly afterName: string;
    /** A single name, or a grammar that picks one of several. */
    readonly name: string | LlamaGrammar;
    readonly argumentsGrammar: (name: string) => Promise<LlamaGrammar>;
    /** For a custom tool with a grammar Flint can enforce: the grammar its raw input follows. */
    readonly customInputGrammar: (name: string) => Promise<LlamaGrammar | undefined>;
  };
  /** Tokenizer for template text with literal special tokens. */
  readonly tokenize: (text: string) => Token[];
  /** Tokens of a predicted output, used as drafts (greedy decoding only). */
  readonly predictionTokens?: readonly Token[];
}

/** The end of one generation. */
export interface SlotResult {
  finishReason: FinishReason;
  usage: Usage;
  timings: Omit<GenerationTimings, 'queueMs'>;
  /** The thought segment exactly as it stands in the context, if the model wrote one. */
  reasoning?: string;
}

/** What the worker's message loop needs of a slot, whichever engine holds its KV cache. */
export interface EngineSlot {
  readonly index: number;
  /** How the last request's evicted prefix was saved: before it, while idle, or not at all. */
  readonly evictionSave: 'none' | 'idle' | 'critical';
  saveWhileIdle(): Promise<void>;
  generate(request: GenerateRequest, prompt: PreparedPrompt, plan: GenerationPlan, defaultMaxTokens: number, signal: AbortSignal, sink: SlotSink): Promise<SlotResult>;
}

/**
 * One context sequence. It keeps the tokens it holds, so a request continues from the longest
 * common prefix and only the rest is evaluated. Used by one request at a time.
 */
export class Slot implements EngineSlot {
  readonly index: number;
  readonly #sequence: LlamaContextSequence;
  readonly #model: LlamaModel;
  readonly #batchSize: number;
  readonly #saved: SavedPrefixes;
  readonly #minSavedTokens: number;
  readonly #barrier: DecodeBarrier;
  /** Every slot of this worker's context (this one included): prefixes can be copied between them. */
  readonly #siblings: readonly Slot[];
  /** The cache scope of the request that left the held tokens. */
  #scope = sharedScope;
  /** A save of the held tokens begun while the slot was idle, until it ends. */
  #idleSave: Promise<void> | undefined;
  /** The tokens that save kept (the saved entry's own array), while the slot still holds them. */
  #savedWhileIdle: readonly Token[] | undefined;
  /** How the last request's evicted prefix was saved: before it, while idle, or not at all. */
  evictionSave: 'none' | 'idle' | 'critical' = 'none';

  constructor(index: number, sequence: LlamaContextSequence, model: LlamaModel, options: { batchSize: number; saved: SavedPrefixes; minSavedTokens: number; barrier: DecodeBarrier; siblings?: readonly Slot[] }) {
    this.index = index;
    this.#siblings = options.siblings ?? [];
    this.#sequence = sequence;
    this.#model = model;
    this.#batchSize = options.batchSize;
    this.#saved = options.saved;
    this.#minSavedTokens = options.minSavedTokens;
    this.#barrier = options.barrier;
  }

  /**
   * Saves what the slot holds while nothing runs on it, so that a request that later evicts it
   * does not pay for the copy before its prompt can be evaluated. Does nothing when the held
   * prefix is short or already saved.
   */
  saveWhileIdle(): Promise<void> {
    if (this.#idleSave) return this.#idleSave;
    const held = this.#sequence.contextTokens;
    const saved = this.#savedWhileIdle;
    if (held.length < this.#minSavedTokens || (saved && this.#saved.holds(saved) && saved.length === held.length)) return Promise.resolve();
    this.#idleSave = this.#saved
      .save(this.#sequence, this.#scope)
      .then((tokens) => {
        this.#savedWhileIdle = tokens;
      })
      .catch(() => undefined)
      .finally(() => {
        this.#idleSave = undefined;
      });
    return this.#idleSave;
  }

  /**
   * Evaluates the part of the prompt not already held, then samples until EOG, a stop, a tool
   * call (when parallel calls are off), the token cap, the end of the context or `signal`.
   * Aborting stops within one decode step (or one prompt batch) and returns `cancelled`.
   */
  async generate(request: GenerateRequest, prompt: PreparedPrompt, plan: GenerationPlan, defaultMaxTokens: number, signal: AbortSignal, sink: SlotSink): Promise<SlotResult> {
    const started = performance.now();
    const tokens = prompt.tokens;
    const contextSize = this.#sequence.contextSize;
    if (tokens.length >= contextSize) {
      throw new FlintError('FLINT_ERR_CONTEXT_OVERFLOW', {
        param: request.inputParam ?? (request.input.type === 'chat' ? 'messages' : 'prompt'),
        details: { contextSize, promptTokens: tokens.length, detail: ' (no room left for output)' },
      });
    }
    const scope = request.cacheScope ?? sharedScope;
    this.evictionSave = 'none';
    const swapped = await this.#swapPrefix(tokens, scope);
    const reused = await this.#reusePrefix(tokens, scope);
    this.#scope = scope;
    sink.onStarted(tokens.length, reused, Math.min(swapped.restored, reused), Math.min(swapped.copied, reused));
    const room = contextSize - tokens.length;
    const cap = request.maxTokens ?? (defaultMaxTokens > 0 ? defaultMaxTokens : room);
    const decode = new DecodeState(Math.min(cap, room), signal);

    const rest = await this.#prefill(tokens, reused, signal, sink);
    if (rest === undefined) decode.finishReason = 'cancelled';
    else if (request.isWarmupOnly) await this.#sequence.evaluateWithoutGeneratingNewTokens(rest);
    else if (decode.maxTokens <= 0) decode.finishReason = 'length';
    else if (plan.forcedCall) await this.#forcedCall(rest, request, plan, decode, sink);
    else await this.#freeText(rest, request, prompt, plan, decode, sink);

    const ended = performance.now();
    const firstAt = decode.firstTokenAt;
    const prediction = decode.prediction;
    return {
      finishReason: decode.finishReason,
      usage: {
        promptTokens: tokens.length,
        cachedTokens: reused,
        // As OpenAI counts them: rejected draft tokens were computed too.
        completionTokens: decode.generated + (prediction?.rejected ?? 0),
        reasoningTokens: decode.reasoningTokens,
        acceptedPredictionTokens: prediction?.accepted,
        rejectedPredictionTokens: prediction?.rejected,
      },
      timings: { prefillMs: (firstAt ?? ended) - started, decodeMs: firstAt === undefined ? 0 : ended - firstAt },
      reasoning: decode.reasoning,
    };
  }

  /** Ordinary decoding: text, stop strings, and tool calls written in the template's syntax. */
  async #freeText(input: Token[], request: GenerateRequest, prompt: PreparedPrompt, plan: GenerationPlan, decode: DecodeState, sink: SlotSink): Promise<void> {
    const router = new OutputRouter(request, prompt, sink, decode);
    // Special tokens such as <tool_call> or <think> must be visible to the detectors.
    const decoder = new TokenTextDecoder(this.#model, router.needsSpecialText);
    let isStopped = false;
    const grammarEvaluationState = plan.grammar ? new LlamaGrammarEvaluationState({ model: this.#model, grammar: plan.grammar }) : undefined;
    let source: AsyncIterable<Token>;
    if (plan.predictionTokens && plan.predictionTokens.length > 0) {
      const predicted = new PredictedDecoder(this.#sequence, plan.predictionTokens, (t) => this.#model.isEogToken(t));
      decode.prediction = predicted.stats;
      source = predicted.tokens(input, Math.min(decode.maxTokens, this.#sequence.contextSize - this.#sequence.nextTokenIndex - 1));
    } else source = this.#sequence.evaluate(input, toEvaluateOptions(request.sampling, () => decode.output.slice(-64), grammarEvaluationState));
    this.#barrier.join(this);
    try {
      for await (const token of source) {
        if (!decode.accept(token, prompt.stopTokens)) break;
        const text = decoder.push(token);
        if (router.push(text, 1)) {
          isStopped = true;
          break;
        }
        if (decode.isAtCap() || decode.isOutOfTime(text, request.maxPredictMs)) break;
        // The next token is queued in step with the other slots' (one decode for all of them).
        const inStep = this.#barrier.arrive(this);
        if (inStep) await inStep;
      }
    } finally {
      this.#barrier.leave(this);
    }
    if (decode.finishReason !== 'cancelled' && !isStopped) router.push(decoder.flush(), 0, true);
    if (router.calls > 0 && decode.finishReason === 'stop') decode.finishReason = 'tool_calls';
  }

  /** `tool_choice` required/named: writes the call syntax, then grammar-constrained name and arguments. */
  async #forcedCall(input: Token[], request: GenerateRequest, plan: GenerationPlan, decode: DecodeState, sink: SlotSink): Promise<void> {
    const forced = plan.forcedCall!;
    let name: string;
    let next: Token[];
    if (typeof forced.name === 'string') {
      name = forced.name;
      next = [...input, ...plan.tokenize(forced.beforeName + name + forced.afterName)];
    } else {
      const picked = await this.#constrained([...input, ...plan.tokenize(forced.beforeName)], forced.name, request, decode);
      if (picked === undefined) return;
      name = picked;
      next = plan.tokenize(forced.afterName);
    }
    const inputGrammar = await forced.customInputGrammar(name);
    if (inputGrammar) {
      // The input is generated raw under the tool's grammar, inside the call's `{"input": "` opening.
      const input = await this.#constrained([...next, ...plan.tokenize('{"input": "')], inputGrammar, request, decode);
      if (input === undefined) return;
      sink.onToolCall({ id: createId('call_'), name, arguments: JSON.stringify({ input }) });
      decode.finishReason = 'tool_calls';
      return;
    }
    const args = await this.#constrained(next, await forced.argumentsGrammar(name), request, decode);
    if (args === undefined) return;
    try {
      sink.onToolCall({ id: createId('call_'), name, arguments: JSON.stringify(JSON.parse(args)) });
      decode.finishReason = 'tool_calls';
    } catch {
      // Cut off by the token cap before the arguments were complete: report what there is as text.
      sink.onDelta(args, 0);
    }
  }

  /** Generates under `grammar` until it completes; undefined when cut off or cancelled. */
  async #constrained(input: Token[], grammar: LlamaGrammar, request: GenerateRequest, decode: DecodeState): Promise<string | undefined> {
    const decoder = new TokenTextDecoder(this.#model, false);
    const state = new LlamaGrammarEvaluationState({ model: this.#model, grammar });
    let text = '';
    this.#barrier.join(this);
    try {
      for await (const token of this.#sequence.evaluate(input, toEvaluateOptions(request.sampling, () => [], state))) {
        if (!decode.accept(token, noStopTokens)) return undefined;
        text += decoder.push(token);
        if (decode.isAtCap()) return undefined;
        const inStep = this.#barrier.arrive(this);
        if (inStep) await inStep;
      }
    } finally {
      this.#barrier.leave(this);
    }
    return decode.finishReason === 'cancelled' ? undefined : text + decoder.flush();
  }

  /**
   * Before most of what the slot holds is overwritten, saves it. Then, if another slot of this
   * worker (busy or not) or a saved prefix shares clearly more of this prompt than the slot
   * holds, takes that prefix: a copy of the other slot's KV cells (a fork of a conversation
   * another slot serves), else a restore of the saved state. Returns the tokens obtained either way.
   */
  async #swapPrefix(tokens: Token[], scope: string): Promise<{ restored: number; copied: number }> {
    // A save begun while the slot was idle reads the KV cells this request is about to change.
    if (this.#idleSave) await this.#idleSave;
    const held = this.#sequence.contextTokens;
    const shared = scope === this.#scope ? commonPrefix(held, tokens) : 0;
    const saved = this.#saved.find(tokens, shared + this.#minSavedTokens, scope);
    const sibling = this.#siblingPrefix(tokens, Math.max(shared + this.#minSavedTokens, saved ? saved.shared - 1 : 0), scope);
    const isMostlyLost = held.length >= this.#minSavedTokens && shared < held.length / 2;
    if (held.length >= this.#minSavedTokens && (isMostlyLost || saved || sibling)) {
      const savedWhileIdle = this.#savedWhileIdle;
      if (savedWhileIdle && this.#saved.holds(savedWhileIdle) && savedWhileIdle.length === held.length && commonPrefix(savedWhileIdle, held) === held.length) this.evictionSave = 'idle';
      else {
        await this.#saved.save(this.#sequence, this.#scope);
        this.evictionSave = 'critical';
      }
    }
    this.#savedWhileIdle = undefined;
    if (sibling && (await this.#copyFrom(sibling.slot, sibling.shared))) {
      this.#scope = scope;
      return { restored: 0, copied: sibling.shared };
    }
    if (saved && (await this.#saved.restore(this.#sequence, saved.tokens))) {
      this.#scope = scope;
      return { restored: saved.shared, copied: 0 };
    }
    return { restored: 0, copied: 0 };
  }

  /** The other slot whose held tokens share the most of `tokens` (more than `atLeast`), in `scope`. */
  #siblingPrefix(tokens: readonly Token[], atLeast: number, scope: string): { slot: Slot; shared: number } | undefined {
    // Not worth a look when the prompt's new part is too short to gain from a copy (a warm turn).
    if (tokens.length <= atLeast) return undefined;
    let best: { slot: Slot; shared: number } | undefined;
    for (const other of this.#siblings) {
      if (other === this || other.#scope !== scope) continue;
      const shared = commonPrefix(other.#sequence.contextTokens, tokens);
      if (shared > (best?.shared ?? atLeast)) best = { slot: other, shared };
    }
    return best;
  }

  /**
   * Makes this slot hold the first `count` tokens of what `other` holds, by copying its KV cells
   * (llama.cpp's `llama_memory_seq_cp`, under the context lock, so `other` may be decoding).
   * False (and the slot emptied) when node-llama-cpp could not copy.
   */
  async #copyFrom(other: Slot, count: number): Promise<boolean> {
    const target = this.#sequence as unknown as CopyableSequence;
    if (typeof target._copyStateFromOtherSequence !== 'function') return false;
    try {
      if (await target._copyStateFromOtherSequence(other.#sequence, count)) return true;
    } catch {
      // handled below
    }
    await this.#sequence.clearHistory();
    return false;
  }

  /** Erases the divergent tail and returns how many prompt tokens are already held. */
  async #reusePrefix(tokens: Token[], scope: string): Promise<number> {
    const held = this.#sequence.contextTokens;
    // The last prompt token is always evaluated again, for its logits. Another scope's tokens are never reused.
    const common = scope === this.#scope ? Math.max(0, Math.min(commonPrefix(held, tokens), tokens.length - 1)) : 0;
    if (common < this.#sequence.nextTokenIndex) {
      await this.#sequence.eraseContextTokenRanges([{ start: common, end: this.#sequence.nextTokenIndex }]);
    }
    return common;
  }

  /**
   * Evaluates the prompt in batches, checking for aborts between them, and leaves the last batch
   * (at most `batchSize` tokens, the last prompt token always among them) for the caller to
   * evaluate together with the first decode step. Undefined when aborted.
   */
  async #prefill(tokens: Token[], from: number, signal: AbortSignal, sink: SlotSink): Promise<Token[] | undefined> {
    let at = from;
    for (; tokens.length - at > this.#batchSize; at += this.#batchSize) {
      if (signal.aborted) return undefined;
      await this.#sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(at, at + this.#batchSize));
      sink.onProgress(at + this.#batchSize, tokens.length);
    }
    return signal.aborted ? undefined : tokens.slice(at);
  }
}

/**
 * node-llama-cpp's (internal, used by its own decision contexts) copy of one sequence's state into
 * another of the same context: the tokens and KV cells, then the tail past `upToTokenIndex` erased.
 */
interface CopyableSequence {
  _copyStateFromOtherSequence?(other: LlamaContextSequence, upToTokenIndex: number): Promise<boolean>;
}

/** The scope of requests that carry none (and of a slot that held nothing yet). */
const sharedScope = 'shared';

/** Grammar-constrained steps end only at end-of-generation (handled by node-llama-cpp). */
const noStopTokens: ReadonlySet<Token> = new Set();

/** Token accounting shared by every decoding path of one generation. */
class DecodeState {
  readonly maxTokens: number;
  readonly #signal: AbortSignal;
  readonly output: Token[] = [];
  generated = 0;
  firstTokenAt: number | undefined;
  finishReason: FinishReason = 'stop';
  reasoningTokens = 0;
  reasoning: string | undefined;
  prediction: { accepted: number; rejected: number } | undefined;
  #sawNewline = false;

  constructor(maxTokens: number, signal: AbortSignal) {
    this.maxTokens = maxTokens;
    this.#signal = signal;
  }

  /** Counts a sampled token; false when generation must end before using it. */
  accept(token: Token, stopTokens: ReadonlySet<Token>): boolean {
    this.firstTokenAt ??= performance.now();
    if (this.#signal.aborted) {
      this.finishReason = 'cancelled';
      return false;
    }
    if (stopTokens.has(token)) return false;
    this.generated++;
    this.output.push(token);
    return true;
  }

  /** `maxPredictMs` passed and a newline has been written: the line is complete, stop here (`length`). */
  isOutOfTime(text: string, maxPredictMs: number | undefined): boolean {
    if (maxPredictMs === undefined) return false;
    if (text.includes('\n')) this.#sawNewline = true;
    if (!this.#sawNewline || this.firstTokenAt === undefined || performance.now() - this.firstTokenAt < maxPredictMs) return false;
    this.finishReason = 'length';
    return true;
  }

  isAtCap(): boolean {
    if (this.generated < this.maxTokens) return false;
    this.finishReason = 'length';
    return true;
  }
}

function toEvaluateOptions(sampling: SamplingOptions, punishTokens: () => Token[], grammarEvaluationState?: LlamaGrammarEvaluationState) {
  const hasPenalty = (sampling.presencePenalty ?? 0) !== 0 || (sampling.frequencyPenalty ?? 0) !== 0 || sampling.repeatPenalty !== undefined;
  return {
    temperature: sampling.temperature ?? 1,
    topP: sampling.topP,
    topK: sampling.topK,
    minP: sampling.minP,
    // Negative seeds map onto the same 32-bit space llama.cpp uses.
    seed: sampling.seed === undefined ? undefined : sampling.seed >>> 0,
    grammarEvaluationState,
    repeatPenalty: hasPenalty
      ? {
          punishTokens,
          penalty: sampling.repeatPenalty ?? 1,
          presencePenalty: sampling.presencePenalty ?? 0,
          frequencyPenalty: sampling.frequencyPenalty ?? 0,
        }
      : undefined,
  };
}

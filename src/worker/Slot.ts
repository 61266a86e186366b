import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { FlintError } from '../errors/FlintError.js';
import { StopDetector } from '../utils/StopDetector.js';
import type { FinishReason, GenerateRequest, GenerationTimings, SamplingOptions, Usage } from '../core/types.js';
import type { PreparedPrompt } from './Engine.js';
import { commonPrefix, type SavedPrefixes } from './SavedPrefixes.js';
import { TokenTextDecoder } from './TokenTextDecoder.js';

/** Callbacks through which a slot reports one generation. */
export interface SlotSink {
  onStarted(promptTokens: number, cachedTokens: number, restoredTokens: number): void;
  onDelta(text: string, tokens: number): void;
}

/** The end of one generation. */
export interface SlotResult {
  finishReason: FinishReason;
  usage: Usage;
  timings: Omit<GenerationTimings, 'queueMs'>;
}

/**
 * One context sequence. It keeps the tokens it holds, so a request continues from the longest
 * common prefix and only the rest is evaluated. Used by one request at a time.
 */
export class Slot {
  readonly index: number;
  readonly #sequence: LlamaContextSequence;
  readonly #model: LlamaModel;
  readonly #batchSize: number;
  readonly #saved: SavedPrefixes;
  readonly #minSavedTokens: number;

  constructor(index: number, sequence: LlamaContextSequence, model: LlamaModel, options: { batchSize: number; saved: SavedPrefixes; minSavedTokens: number }) {
    this.index = index;
    this.#sequence = sequence;
    this.#model = model;
    this.#batchSize = options.batchSize;
    this.#saved = options.saved;
    this.#minSavedTokens = options.minSavedTokens;
  }

  /** Tokens currently held in this sequence's KV cache. */
  get heldTokens(): number {
    return this.#sequence.nextTokenIndex;
  }

  /**
   * Evaluates the part of the prompt not already held, then samples until EOG, a stop, the
   * token cap, the end of the context or `signal`. Aborting stops within one decode step (or
   * one prompt batch) and returns `cancelled`.
   */
  async generate(request: GenerateRequest, prompt: PreparedPrompt, defaultMaxTokens: number, signal: AbortSignal, sink: SlotSink): Promise<SlotResult> {
    const started = performance.now();
    const tokens = prompt.tokens;
    const contextSize = this.#sequence.contextSize;
    if (tokens.length >= contextSize) {
      throw new FlintError('FLINT_ERR_CONTEXT_OVERFLOW', {
        param: paramFor(request),
        details: { contextSize, promptTokens: tokens.length, detail: ' (no room left for output)' },
      });
    }
    const restored = await this.#swapPrefix(tokens);
    const reused = await this.#reusePrefix(tokens);
    sink.onStarted(tokens.length, reused, Math.min(restored, reused));

    const room = contextSize - tokens.length;
    const cap = request.maxTokens ?? (defaultMaxTokens > 0 ? defaultMaxTokens : room);
    const maxTokens = Math.min(cap, room);
    const stops = new StopDetector([...request.stop, ...prompt.templateStops]);
    const decoder = new TokenTextDecoder(this.#model);

    let firstTokenAt: number | undefined;
    let generated = 0;
    let finishReason: FinishReason = 'stop';
    let isStopMatched = false;
    const output: Token[] = [];
    if (!(await this.#prefill(tokens, reused, signal))) finishReason = 'cancelled';
    else if (maxTokens <= 0) finishReason = 'length';
    else {
      for await (const token of this.#sequence.evaluate(tokens.slice(-1), toEvaluateOptions(request.sampling, () => output.slice(-64)))) {
        firstTokenAt ??= performance.now();
        if (signal.aborted) {
          finishReason = 'cancelled';
          break;
        }
        if (prompt.stopTokens.has(token)) break;
        generated++;
        output.push(token);
        const out = stops.push(decoder.push(token));
        if (out.text.length > 0) sink.onDelta(out.text, 1);
        if (out.isStopped) {
          isStopMatched = true;
          break;
        }
        if (generated >= maxTokens) {
          finishReason = 'length';
          break;
        }
      }
      if (finishReason !== 'cancelled' && !isStopMatched) {
        const tail = stops.push(decoder.flush()).text + stops.flush();
        if (tail.length > 0) sink.onDelta(tail, 0);
      }
    }
    const ended = performance.now();
    return {
      finishReason,
      usage: { promptTokens: tokens.length, cachedTokens: reused, completionTokens: generated },
      timings: { prefillMs: (firstTokenAt ?? ended) - started, decodeMs: firstTokenAt === undefined ? 0 : ended - firstTokenAt },
    };
  }

  /**
   * Before most of what the slot holds is overwritten, saves it; if a saved prefix matches this
   * prompt clearly better than what the slot holds, restores it. Returns the tokens restored.
   */
  async #swapPrefix(tokens: Token[]): Promise<number> {
    const held = this.#sequence.contextTokens;
    const shared = commonPrefix(held, tokens);
    const candidate = this.#saved.find(tokens, shared + this.#minSavedTokens);
    const isMostlyLost = held.length >= this.#minSavedTokens && shared < held.length / 2;
    if (isMostlyLost || candidate) await this.#saved.save(this.#sequence);
    if (candidate && (await this.#saved.restore(this.#sequence, candidate.tokens))) return candidate.shared;
    return 0;
  }

  /** Erases the divergent tail and returns how many prompt tokens are already held. */
  async #reusePrefix(tokens: Token[]): Promise<number> {
    const held = this.#sequence.contextTokens;
    let common = 0;
    const limit = Math.min(held.length, tokens.length - 1); // the last prompt token is always evaluated, for its logits
    while (common < limit && held[common] === tokens[common]) common++;
    if (common < this.#sequence.nextTokenIndex) {
      await this.#sequence.eraseContextTokenRanges([{ start: common, end: this.#sequence.nextTokenIndex }]);
    }
    return common;
  }

  /** Evaluates all prompt tokens but the last in batches, checking for aborts between them. */
  async #prefill(tokens: Token[], from: number, signal: AbortSignal): Promise<boolean> {
    for (let at = from; at < tokens.length - 1; at += this.#batchSize) {
      if (signal.aborted) return false;
      await this.#sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(at, Math.min(at + this.#batchSize, tokens.length - 1)));
    }
    return !signal.aborted;
  }

}

function paramFor(request: GenerateRequest): string {
  return request.input.type === 'chat' ? 'messages' : 'prompt';
}

function toEvaluateOptions(sampling: SamplingOptions, punishTokens: () => Token[]) {
  const hasPenalty = (sampling.presencePenalty ?? 0) !== 0 || (sampling.frequencyPenalty ?? 0) !== 0 || sampling.repeatPenalty !== undefined;
  return {
    temperature: sampling.temperature ?? 1,
    topP: sampling.topP,
    topK: sampling.topK,
    minP: sampling.minP,
    seed: sampling.seed,
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

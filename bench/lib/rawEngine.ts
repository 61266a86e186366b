/**
 * The physical limit: node-llama-cpp called directly in the bench process, with the same model,
 * thread count, batch size and chat template that Flint's worker uses, and no IPC, HTTP or JSON.
 */
import {
  getLlama,
  LlamaLogLevel,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { splitThreads } from '../../src/worker/splitThreads.js';
import { now } from './clock.js';
import type { GpuOption } from './options.js';

/** Flint's default `engine.batchSize`; the raw side uses the same so prefill work is identical. */
export const defaultBatchSize = 512;
/** Batches of at least this many tokens use the batch thread count (Flint's `engine.batchThreadsMinTokens`). */
export const batchThreadsMinTokens = 32;

export class RawEngine {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly wrapper: ChatWrapper;
  readonly threads: number;
  readonly batchThreads: number;
  readonly tokenizer: { tokenize(text: string): Token[]; detokenize(tokens: readonly number[]): string };

  private constructor(llama: Llama, model: LlamaModel, threads: number, batchThreads: number) {
    this.llama = llama;
    this.model = model;
    this.threads = threads;
    this.batchThreads = batchThreads;
    this.wrapper = resolveChatWrapper(model);
    this.tokenizer = {
      tokenize: (text) => model.tokenize(text),
      detokenize: (tokens) => model.detokenize(tokens as Token[]),
    };
  }

  static async load(options: { modelPath: string; gpu: GpuOption; threads: number; batchThreads: number }): Promise<RawEngine> {
    const llama = await getLlama({
      gpu: options.gpu === 'off' ? false : options.gpu,
      // As in Flint's worker: threads are set per context, so the pool does not cap them.
      maxThreads: 0,
      build: 'never',
      progressLogs: false,
      // Contexts larger than a synthetic model's training context are fine here; keep the warning quiet.
      logLevel: LlamaLogLevel.error,
    });
    const model = await llama.loadModel({ modelPath: options.modelPath });
    return new RawEngine(llama, model, options.threads, options.batchThreads);
  }

  get trainContextSize(): number {
    return this.model.trainContextSize;
  }

  /**
   * A context like a Flint worker's: `sequences` slots of `contextSize` tokens each, with the same
   * thread policy (batch threads for prompt batches, decode threads for single-token steps),
   * applied through the same helper Flint's worker uses.
   */
  async createContext(contextSize: number, sequences: number): Promise<LlamaContext> {
    const context = await this.model.createContext({
      contextSize,
      sequences,
      threads: Math.max(this.threads, this.batchThreads),
      batchSize: Math.min(defaultBatchSize, contextSize),
    });
    splitThreads(context, { decodeThreads: this.threads, batchThreads: this.batchThreads, minBatchTokens: batchThreadsMinTokens });
    return context;
  }

  /** The chat rendered for generation, exactly as Flint's worker renders it. */
  render(history: readonly ChatHistoryItem[]): Token[] {
    return this.wrapper.generateContextState({ chatHistory: [...history] }).contextText.tokenize(this.model.tokenizer);
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
    await this.llama.dispose();
  }
}

/** One raw generation, timed from receiving the chat (before rendering) to its last token. */
export interface RawRun {
  readonly startedAt: number;
  /** Rendering the chat template and tokenizing (Flint does the same work per request). */
  readonly renderMs: number;
  /**
   * The engine's own time to the first token: state work, erasing, prefill and the first
   * decode, without rendering. Gateway TTFT minus this is everything the gateway adds.
   */
  readonly engineTtftMs: number;
  readonly firstTokenAt: number | undefined;
  readonly tokenTimes: number[];
  readonly text: string;
  readonly promptTokens: number;
  /** Prompt tokens already held by the sequence and not evaluated again. */
  readonly cachedTokens: number;
  readonly completionTokens: number;
  readonly endedAt: number;
}

export interface RawGenerateOptions {
  readonly maxTokens: number;
  /** Keep the longest common prefix the sequence holds (like a Flint slot); false clears it first. */
  readonly reuse: boolean;
  /** Extra timed work before evaluation (e.g. restoring a saved state), as Flint would do it. */
  readonly before?: (sequence: LlamaContextSequence) => Promise<void>;
}

/** Leading tokens that `a` and `b` share. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Greedy generation on one sequence, detokenizing every token as a server must. With `reuse`,
 * the divergent tail is erased and only the rest is evaluated (the last prompt token always is,
 * for its logits), which is what Flint's slots do and the best one process can do.
 */
export async function rawGenerate(engine: RawEngine, sequence: LlamaContextSequence, history: readonly ChatHistoryItem[], options: RawGenerateOptions): Promise<RawRun> {
  const startedAt = now();
  await options.before?.(sequence);
  const renderStart = now();
  const tokens = engine.render(history);
  const renderMs = now() - renderStart;
  let cached = 0;
  if (!options.reuse) await sequence.clearHistory();
  else {
    cached = Math.min(commonPrefix(sequence.contextTokens, tokens), tokens.length - 1);
    if (cached < sequence.nextTokenIndex) await sequence.eraseContextTokenRanges([{ start: cached, end: sequence.nextTokenIndex }]);
  }
  const tokenTimes: number[] = [];
  let text = '';
  if (options.maxTokens > 0) {
    for await (const token of sequence.evaluate(tokens.slice(cached), { temperature: 0 })) {
      tokenTimes.push(now());
      text += engine.model.detokenize([token]);
      if (tokenTimes.length >= options.maxTokens) break;
    }
  }
  return {
    startedAt,
    renderMs,
    engineTtftMs: tokenTimes.length > 0 ? tokenTimes[0] - startedAt - renderMs : Number.NaN,
    firstTokenAt: tokenTimes[0],
    tokenTimes,
    text,
    promptTokens: tokens.length,
    cachedTokens: cached,
    completionTokens: tokenTimes.length,
    endedAt: now(),
  };
}

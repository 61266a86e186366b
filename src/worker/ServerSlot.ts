import type { LlamaGrammar, Token } from 'node-llama-cpp';
import type { FinishReason, GenerateRequest, SamplingOptions } from '../core/types.js';
import { FlintError } from '../errors/FlintError.js';
import { createId } from '../utils/ids.js';
import type { PreparedPrompt } from './Engine.js';
import { OutputRouter, type ThoughtAccount } from './OutputRouter.js';
import type { EngineSlot, GenerationPlan, SlotResult, SlotSink } from './Slot.js';

/** Where the llama-server that holds this worker's KV cache listens, and its key. */
export interface ServerEndpoint {
  readonly url: string;
  readonly key: string;
  /** Its name in errors (the member's, or `llama-server`). */
  readonly name?: string;
}

/** Longest SSE line accepted from the server (a chunk is one token's text plus its figures). */
const maxLineChars = 1 << 20;

/** One streamed chunk of llama-server's `/completion`, the fields read here. */
interface CompletionChunk {
  content?: string;
  stop?: boolean;
  stop_type?: string;
  tokens_predicted?: number;
  timings?: { cache_n?: number };
  prompt_progress?: { total?: number; cache?: number; processed?: number };
  error?: { message?: string };
}

/** What one request to the server produced. */
interface ServerRun {
  finishReason: FinishReason;
  generated: number;
  cachedTokens: number;
  firstAt: number | undefined;
}

/**
 * A slot of a llama-server that this worker drives with prompts it rendered and tokenized itself
 * (`engine.backend: llama-server`). The worker keeps what node-llama-cpp slots keep (the chat
 * template, incremental rendering of each turn, tool-call and thought parsing, grammars for
 * forced calls and JSON output); the server keeps the KV cache: every request goes to its slot of
 * the same index (`id_slot`) with the prompt as token ids and `cache_prompt`, so the server
 * evaluates only the tokens past the prefix it holds, and decodes in its own C++ loop, batching
 * the slots together.
 */
export class ServerSlot implements EngineSlot {
  readonly index: number;
  readonly evictionSave = 'none' as const;
  readonly #server: ServerEndpoint;
  readonly #contextSize: number;

  constructor(index: number, server: ServerEndpoint, contextSize: number) {
    this.index = index;
    this.#server = server;
    this.#contextSize = contextSize;
  }

  /** The server keeps evicted prompts itself (`--cache-ram`). */
  saveWhileIdle(): Promise<void> {
    return Promise.resolve();
  }

  async generate(request: GenerateRequest, prompt: PreparedPrompt, plan: GenerationPlan, defaultMaxTokens: number, signal: AbortSignal, sink: SlotSink): Promise<SlotResult> {
    const started = performance.now();
    const tokens = prompt.tokens;
    if (tokens.length >= this.#contextSize) {
      throw new FlintError('FLINT_ERR_CONTEXT_OVERFLOW', {
        param: request.inputParam ?? (request.input.type === 'chat' ? 'messages' : 'prompt'),
        details: { contextSize: this.#contextSize, promptTokens: tokens.length, detail: ' (no room left for output)' },
      });
    }
    const room = this.#contextSize - tokens.length;
    const cap = Math.min(request.maxTokens ?? (defaultMaxTokens > 0 ? defaultMaxTokens : room), room);
    const account: ThoughtAccount = { reasoningTokens: 0, reasoning: undefined };
    let isStartReported = false;
    const onStart = (cached: number) => {
      if (isStartReported) return;
      isStartReported = true;
      sink.onStarted(tokens.length, cached, 0, 0);
    };
    let run: ServerRun;
    if (request.isWarmupOnly || cap <= 0) {
      run = await this.#complete(tokens, request, { maxTokens: 0 }, signal, onStart, sink, () => false);
      // A warm-up asked for no output (done); a prompt that fills the slot has no room for any.
      if (run.finishReason !== 'cancelled') run.finishReason = request.isWarmupOnly ? 'stop' : 'length';
      run.generated = 0;
    } else if (plan.forcedCall) run = await this.#forcedCall(tokens, request, plan, cap, signal, onStart, sink);
    else {
      const router = new OutputRouter(request, prompt, sink, account);
      run = await this.#complete(tokens, request, { maxTokens: cap, grammar: plan.grammar, stops: [...request.stop, ...prompt.templateStops] }, signal, onStart, sink, (text, count) => router.push(text, count));
      if (run.finishReason !== 'cancelled') router.push('', 0, true);
      if (router.calls > 0 && run.finishReason === 'stop') run.finishReason = 'tool_calls';
    }
    onStart(run.cachedTokens);
    const ended = performance.now();
    return {
      finishReason: run.finishReason,
      usage: { promptTokens: tokens.length, cachedTokens: Math.min(run.cachedTokens, tokens.length - 1), completionTokens: run.generated, reasoningTokens: account.reasoningTokens },
      timings: { prefillMs: (run.firstAt ?? ended) - started, decodeMs: run.firstAt === undefined ? 0 : ended - run.firstAt },
      reasoning: account.reasoning,
    };
  }

  /** `tool_choice` required or named: the call's syntax, then its name and arguments, each under its grammar. */
  async #forcedCall(input: Token[], request: GenerateRequest, plan: GenerationPlan, cap: number, signal: AbortSignal, onStart: (cached: number) => void, sink: SlotSink): Promise<ServerRun> {
    const forced = plan.forcedCall!;
    let total: ServerRun = { finishReason: 'stop', generated: 0, cachedTokens: 0, firstAt: undefined };
    /** Generates under `grammar` after `tokens`; undefined (and `total` says why) when cut off or cancelled. */
    const constrained = async (tokens: Token[], grammar: LlamaGrammar): Promise<string | undefined> => {
      let text = '';
      const run = await this.#complete(tokens, request, { maxTokens: cap - total.generated, grammar }, signal, onStart, sink, (piece) => {
        text += piece;
        return false;
      });
      total = { finishReason: run.finishReason, generated: total.generated + run.generated, cachedTokens: total.firstAt === undefined ? run.cachedTokens : total.cachedTokens, firstAt: total.firstAt ?? run.firstAt };
      return run.finishReason === 'stop' ? text : undefined;
    };
    let name: string;
    if (typeof forced.name === 'string') name = forced.name;
    else {
      const picked = await constrained([...input, ...plan.tokenize(forced.beforeName)], forced.name);
      if (picked === undefined) return total;
      name = picked;
    }
    const called = [...input, ...plan.tokenize(forced.beforeName + name + forced.afterName)];
    const inputGrammar = await forced.customInputGrammar(name);
    if (inputGrammar) {
      // The input is generated raw under the tool's grammar, inside the call's `{"input": "` opening.
      const raw = await constrained([...called, ...plan.tokenize('{"input": "')], inputGrammar);
      if (raw === undefined) return total;
      sink.onToolCall({ id: createId('call_'), name, arguments: JSON.stringify({ input: raw }) });
      return { ...total, finishReason: 'tool_calls' };
    }
    const args = await constrained(called, await forced.argumentsGrammar(name));
    if (args === undefined) return total;
    try {
      sink.onToolCall({ id: createId('call_'), name, arguments: JSON.stringify(JSON.parse(args)) });
      return { ...total, finishReason: 'tool_calls' };
    } catch {
      // Cut off before the arguments were complete: what there is, as text.
      sink.onDelta(args, 0);
      return { ...total, finishReason: 'length' };
    }
  }

  /**
   * One `/completion` on this slot: `tokens` as the prompt, the text streamed to `onText` (true
   * from it ends the request). Cancelling aborts the request, which ends the server's task.
   */
  async #complete(
    tokens: Token[],
    request: GenerateRequest,
    options: { maxTokens: number; grammar?: LlamaGrammar; stops?: readonly string[] },
    signal: AbortSignal,
    onStart: (cached: number) => void,
    sink: SlotSink,
    onText: (text: string, tokens: number) => boolean,
  ): Promise<ServerRun> {
    const run: ServerRun = { finishReason: 'stop', generated: 0, cachedTokens: 0, firstAt: undefined };
    if (signal.aborted) return { ...run, finishReason: 'cancelled' };
    const ended = new AbortController();
    const abort = () => ended.abort();
    signal.addEventListener('abort', abort, { once: true });
    const body = {
      prompt: tokens,
      id_slot: this.index,
      cache_prompt: true,
      stream: true,
      return_progress: true,
      n_predict: options.maxTokens,
      ...samplingFields(request.sampling),
      grammar: options.grammar?.grammar,
      stop: options.stops && options.stops.length > 0 ? options.stops : undefined,
      t_max_predict_ms: request.maxPredictMs,
    };
    const member = this.#server.name ?? 'llama-server';
    try {
      let res: Response;
      try {
        res = await fetch(`${this.#server.url}/completion`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#server.key}` },
          body: JSON.stringify(body),
          signal: ended.signal,
        });
      } catch (err) {
        // Refused, reset or unreachable before it answered: another engine may serve the request.
        throw new FlintError('FLINT_ERR_UPSTREAM_UNAVAILABLE', { details: { member, detail: describe(err) }, cause: err });
      }
      if (!res.ok || !res.body) {
        const text = (await res.text().catch(() => '')).slice(0, 2_000);
        const detail = `HTTP ${res.status}: ${errorMessageOf(text)}`;
        // Loading, overloaded or broken: another engine may serve it.
        throw new FlintError(res.status >= 500 || res.status === 429 ? 'FLINT_ERR_UPSTREAM_UNAVAILABLE' : 'FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail } });
      }
      const decoder = new TextDecoder();
      let line = '';
      let isDone = false;
      for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
        line += decoder.decode(bytes, { stream: true });
        for (let nl = line.indexOf('\n'); nl !== -1 && !isDone; nl = line.indexOf('\n')) {
          const current = line.slice(0, nl);
          line = line.slice(nl + 1);
          if (!current.startsWith('data:')) continue;
          const chunk = JSON.parse(current.slice(5)) as CompletionChunk;
          if (chunk.error) throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: chunk.error.message ?? 'error' } });
          const progress = chunk.prompt_progress;
          if (progress) {
            run.cachedTokens = progress.cache ?? 0;
            onStart(run.cachedTokens);
            if (progress.total !== undefined && progress.processed !== undefined && progress.processed < progress.total) sink.onProgress(progress.processed, progress.total);
          }
          if (chunk.timings?.cache_n !== undefined) run.cachedTokens = chunk.timings.cache_n;
          const predicted = chunk.tokens_predicted ?? run.generated;
          const count = Math.max(0, predicted - run.generated);
          run.generated = Math.max(run.generated, predicted);
          const text = chunk.content ?? '';
          if (text.length > 0 || count > 0) {
            run.firstAt ??= performance.now();
            onStart(run.cachedTokens);
            if (onText(text, count)) {
              isDone = true;
              break;
            }
          }
          if (chunk.stop) {
            run.finishReason = chunk.stop_type === 'limit' ? 'length' : 'stop';
            isDone = true;
          }
        }
        if (isDone) break;
        if (line.length > maxLineChars) throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: `an event line longer than ${maxLineChars} characters` } });
      }
      if (!isDone && !signal.aborted) throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: 'the stream ended before the answer did' } });
    } catch (err) {
      if (!signal.aborted) {
        if (err instanceof FlintError) throw err;
        throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: describe(err) }, cause: err });
      }
    } finally {
      signal.removeEventListener('abort', abort);
      // A stop this side (a stop string, a call) ends the server's task too.
      ended.abort();
    }
    if (signal.aborted) run.finishReason = 'cancelled';
    return run;
  }
}

/** Flint's sampling settings under llama-server's names; unset ones take node-llama-cpp's defaults, as Flint's own slots do. */
function samplingFields(s: SamplingOptions): Record<string, unknown> {
  const hasPenalty = (s.presencePenalty ?? 0) !== 0 || (s.frequencyPenalty ?? 0) !== 0 || s.repeatPenalty !== undefined;
  return {
    temperature: s.temperature ?? 1,
    top_p: s.topP ?? 0.95,
    top_k: s.topK ?? 40,
    min_p: s.minP ?? 0,
    seed: s.seed === undefined ? undefined : s.seed >>> 0,
    repeat_penalty: hasPenalty ? (s.repeatPenalty ?? 1) : 1,
    presence_penalty: s.presencePenalty ?? 0,
    frequency_penalty: s.frequencyPenalty ?? 0,
    repeat_last_n: 64,
  };
}

/** An error's message with its cause (undici puts the socket error there). */
function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message} (${cause})` : (e?.message ?? String(err));
}

function errorMessageOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } };
    return parsed.error?.message ?? text;
  } catch {
    return text;
  }
}

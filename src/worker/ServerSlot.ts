import type { LlamaGrammar, Token } from 'node-llama-cpp';
import type { FinishReason, GenerateRequest, SamplingOptions } from '../core/types.js';
import { FlintError } from '../errors/FlintError.js';
import { createId } from '../utils/ids.js';
import type { PreparedPrompt } from './Engine.js';
import { OutputRouter, type ThoughtAccount } from './OutputRouter.js';
import type { EngineSlot, GenerationPlan, SlotResult, SlotSink } from './Slot.js';
import type { ServerEndpoint, ServerKind } from '../ipc/messages.js';

/** Longest SSE line accepted from the server (a chunk is one token's text plus its figures). */
const maxLineChars = 1 << 20;

/** One streamed chunk of llama-server's `/completion`, vLLM's `/v1/completions` or Ollama's `/api/generate`, the fields read here. */
interface CompletionChunk {
  // llama-server
  content?: string;
  stop?: boolean;
  stop_type?: string;
  tokens_predicted?: number;
  timings?: { cache_n?: number };
  prompt_progress?: { total?: number; cache?: number; processed?: number };
  // vLLM (OpenAI Completions)
  choices?: Array<{ text?: string; finish_reason?: string | null }>;
  usage?: { completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } | null } | null;
  // Ollama
  response?: string;
  done?: boolean;
  done_reason?: string;
  eval_count?: number;
  error?: { message?: string } | string;
}

/** What a chunk says, whatever the engine. */
interface ChunkFacts {
  text: string;
  /** Tokens generated so far, where the engine says (else each text chunk counts one). */
  generated?: number;
  cached?: number;
  progress?: { total: number; processed: number };
  finish?: 'stop' | 'length';
  error?: string;
}

/** One request's output settings. */
interface CompletionOptions {
  readonly maxTokens: number;
  readonly grammar?: LlamaGrammar;
  /** The same constraint as a JSON schema (or `json`), for engines that take no GBNF. */
  readonly jsonSchema?: unknown;
  readonly stops?: readonly string[];
}

/** What one request to the server produced. */
interface ServerRun {
  finishReason: FinishReason;
  generated: number;
  cachedTokens: number;
  firstAt: number | undefined;
}

/**
 * A slot of an engine that this worker drives with prompts it rendered and tokenized itself: a
 * llama-server (`engine.backend: llama-server`, or a member with `render: front`), or a vLLM or
 * Ollama member with `render: front`. The worker keeps what node-llama-cpp slots keep (the chat
 * template, incremental rendering of each turn, tool-call and thought parsing, grammars for
 * forced calls and JSON output); the engine keeps the KV cache and decodes in its own loop. A
 * llama-server gets each request on its slot of the same index (`id_slot`) with the prompt as
 * token ids and `cache_prompt`, so it evaluates only the tokens past the prefix it holds; vLLM
 * gets token ids (its prefix cache finds them), Ollama the rendered text with `raw`.
 */
export class ServerSlot implements EngineSlot {
  readonly index: number;
  readonly evictionSave = 'none' as const;
  readonly #server: ServerEndpoint;
  readonly #kind: ServerKind;
  readonly #contextSize: number;
  /** Token ids as text with their special tokens written out (Ollama takes the prompt as text). */
  readonly #toText: (tokens: readonly Token[]) => string;

  constructor(index: number, server: ServerEndpoint, contextSize: number, toText: (tokens: readonly Token[]) => string) {
    this.index = index;
    this.#server = server;
    this.#kind = server.kind ?? 'llama-server';
    this.#contextSize = contextSize;
    this.#toText = toText;
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
      const format = request.responseFormat;
      const jsonSchema = format?.type === 'json_schema' ? format.schema : format?.type === 'json_object' ? 'json' : undefined;
      run = await this.#complete(tokens, request, { maxTokens: cap, grammar: plan.grammar, jsonSchema, stops: [...request.stop, ...prompt.templateStops] }, signal, onStart, sink, (text, count) => router.push(text, count));
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
    const constrained = async (tokens: Token[], grammar: LlamaGrammar, jsonSchema?: unknown): Promise<string | undefined> => {
      let text = '';
      const run = await this.#complete(tokens, request, { maxTokens: cap - total.generated, grammar, jsonSchema }, signal, onStart, sink, (piece) => {
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
    // Engines without GBNF (Ollama) take the arguments' JSON schema instead.
    const parameters = request.tools?.find((t) => t.name === name)?.parameters;
    const args = await constrained(called, await forced.argumentsGrammar(name), parameters ?? 'json');
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
    options: CompletionOptions,
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
    const { path, body } = this.#requestFor(tokens, request, options);
    const member = this.#server.name ?? 'llama-server';
    try {
      let res: Response;
      try {
        res = await fetch(`${this.#server.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.#server.key ? { authorization: `Bearer ${this.#server.key}` } : {}) },
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
      let isFinished = false;
      for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
        line += decoder.decode(bytes, { stream: true });
        for (let nl = line.indexOf('\n'); nl !== -1 && !isDone; nl = line.indexOf('\n')) {
          const current = line.slice(0, nl);
          line = line.slice(nl + 1);
          const facts = this.#read(current);
          if (!facts) continue;
          if (facts.error !== undefined) throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: facts.error } });
          if (facts.progress) {
            if (facts.cached !== undefined) run.cachedTokens = facts.cached;
            onStart(run.cachedTokens);
            if (facts.progress.processed < facts.progress.total) sink.onProgress(facts.progress.processed, facts.progress.total);
          } else if (facts.cached !== undefined) run.cachedTokens = facts.cached;
          const predicted = facts.generated ?? (facts.text.length > 0 ? run.generated + 1 : run.generated);
          const count = Math.max(0, predicted - run.generated);
          run.generated = Math.max(run.generated, predicted);
          // A warm-up's one token (engines that must generate one) is not output.
          const text = options.maxTokens === 0 ? '' : facts.text;
          if (text.length > 0 || count > 0) {
            run.firstAt ??= performance.now();
            onStart(run.cachedTokens);
            if (onText(text, count)) {
              isDone = true;
              break;
            }
          }
          if (facts.finish) {
            run.finishReason = facts.finish;
            isFinished = true;
            // vLLM sends its usage (the cached prompt tokens) in a chunk after the finish.
            if (this.#kind !== 'vllm') isDone = true;
          }
        }
        if (isDone) break;
        if (line.length > maxLineChars) throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: `an event line longer than ${maxLineChars} characters` } });
      }
      if (!isDone && !isFinished && !signal.aborted) throw new FlintError('FLINT_ERR_UPSTREAM_FAILED', { details: { member, detail: 'the stream ended before the answer did' } });
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
    if (options.maxTokens === 0) run.generated = 0;
    return run;
  }

  /** The engine's request for `tokens`: path and body. */
  #requestFor(tokens: Token[], request: GenerateRequest, options: CompletionOptions): { path: string; body: Record<string, unknown> } {
    const s = request.sampling;
    const stops = options.stops && options.stops.length > 0 ? options.stops : undefined;
    switch (this.#kind) {
      case 'llama-server':
        return {
          path: '/completion',
          body: {
            prompt: tokens,
            id_slot: this.index,
            cache_prompt: true,
            stream: true,
            return_progress: true,
            n_predict: options.maxTokens,
            ...samplingFields(s),
            grammar: options.grammar?.grammar,
            stop: stops,
            t_max_predict_ms: request.maxPredictMs,
          },
        };
      case 'vllm': {
        const { repeat_penalty, repeat_last_n: _last, ...sampling } = samplingFields(s);
        return {
          path: '/v1/completions',
          body: {
            model: this.#server.model,
            prompt: tokens,
            stream: true,
            stream_options: { include_usage: true, continuous_usage_stats: true },
            // vLLM generates at least one token; a warm-up's is dropped.
            max_tokens: Math.max(1, options.maxTokens),
            ...sampling,
            repetition_penalty: repeat_penalty,
            stop: stops,
            skip_special_tokens: false,
            spaces_between_special_tokens: false,
            guided_grammar: options.grammar?.grammar,
          },
        };
      }
      case 'ollama': {
        const { repeat_last_n, ...sampling } = samplingFields(s);
        return {
          path: '/api/generate',
          body: {
            model: this.#server.model,
            prompt: this.#toText(tokens),
            raw: true,
            stream: true,
            options: { ...sampling, repeat_last_n, num_predict: Math.max(1, options.maxTokens), stop: stops },
            // Ollama constrains output by a JSON schema only (no GBNF).
            format: options.jsonSchema,
          },
        };
      }
    }
  }

  /** One line of the engine's stream; undefined for lines that say nothing (SSE comments, `[DONE]`). */
  #read(line: string): ChunkFacts | undefined {
    if (this.#kind === 'ollama') {
      if (line.trim() === '') return undefined;
      const chunk = JSON.parse(line) as CompletionChunk;
      if (chunk.error !== undefined) return { text: '', error: typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'error') };
      return { text: chunk.response ?? '', generated: chunk.done ? chunk.eval_count : undefined, finish: chunk.done ? (chunk.done_reason === 'length' ? 'length' : 'stop') : undefined };
    }
    if (!line.startsWith('data:')) return undefined;
    const data = line.slice(5).trim();
    if (data === '[DONE]') return undefined;
    const chunk = JSON.parse(data) as CompletionChunk;
    if (chunk.error !== undefined) return { text: '', error: typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'error') };
    if (this.#kind === 'vllm') {
      const choice = chunk.choices?.[0];
      const reason = choice?.finish_reason;
      return {
        text: choice?.text ?? '',
        generated: chunk.usage?.completion_tokens ?? undefined,
        cached: chunk.usage?.prompt_tokens_details?.cached_tokens ?? undefined,
        finish: reason ? (reason === 'length' ? 'length' : 'stop') : undefined,
      };
    }
    const progress = chunk.prompt_progress;
    return {
      text: chunk.content ?? '',
      generated: chunk.tokens_predicted,
      cached: chunk.timings?.cache_n ?? progress?.cache,
      progress: progress && progress.total !== undefined && progress.processed !== undefined ? { total: progress.total, processed: progress.processed } : undefined,
      finish: chunk.stop ? (chunk.stop_type === 'limit' ? 'length' : 'stop') : undefined,
    };
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

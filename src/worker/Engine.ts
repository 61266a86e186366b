import {
  getLlama,
  LlamaLogLevel,
  LlamaText,
  SpecialTokensText,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatModelFunctionCall,
  type ChatModelSegment,
  type ChatWrapper,
  type LlamaGrammar,
  type Llama,
  type LlamaContext,
  type LlamaModel,
  type Token,
  type Tokenizer,
} from 'node-llama-cpp';
import { FlintError } from '../errors/FlintError.js';
import type { ChatMessage, GenerateRequest, ResponseFormat, ToolSpec } from '../core/types.js';
import { LruMap } from '../utils/LruMap.js';
import type { GenerationPlan } from './Slot.js';
import type { ToolCallSyntax } from './ToolCallDetector.js';
import { splitThreads } from './splitThreads.js';
import type { ThoughtSyntax } from './ThoughtSplitter.js';
import { larkToGbnf, regexToGbnf } from './grammar/toGbnf.js';
import { checkJsonShape } from '../utils/checkJsonShape.js';
import { ChatRenderer, type FullRenderReason, type RenderedChat, type RenderMode } from './ChatRenderer.js';

/** Tool-call arguments deeper than this are rendered as their text (the chat template walks them recursively). */
const argumentShapeLimits = { maxDepth: 64, maxArrayItems: 50_000 };
import { createCachingTokenizer } from './CachingTokenizer.js';
import type { WorkerModelFacts, WorkerSettings } from '../ipc/messages.js';

/** Schema text kept in the grammar cache, in all (UTF-16 code units). */
const maxGrammarCacheChars = 4 * 1024 * 1024;

/** What a grammar is compiled from. */
type GrammarSource = ResponseFormat | { type: 'tool_arguments'; tool: ToolSpec } | { type: 'one_of'; values: readonly string[] } | { type: 'gbnf'; gbnf: string };

/** A prompt ready for a slot: its tokens, plus stops the chat template adds. */
export interface PreparedPrompt {
  readonly tokens: Token[];
  /** Stop texts from the chat template that are not single EOG tokens. */
  readonly templateStops: string[];
  /** Single tokens that end generation besides the model's EOG tokens. */
  readonly stopTokens: ReadonlySet<Token>;
  /** Set when tools are offered: how calls look in the output, and which names are valid. */
  readonly tools?: { readonly syntax: ToolCallSyntax; readonly names: readonly string[] };
  /** Set when the template has a thought segment; `openedByPrompt` when the prompt already opened it. */
  readonly thought?: { readonly syntax: ThoughtSyntax; readonly openedByPrompt?: string };
  /** `/infill`: the prefix, suffix or extra context was cut to fit (llama-server's `truncated`). */
  readonly truncated?: boolean;
  /** Chat prompts: how it was rendered, and the memo the slot's next prompt can continue from. */
  readonly render?: { readonly rendered: RenderedChat; readonly mode: RenderMode; readonly reason?: FullRenderReason; readonly ms: number };
}

/**
 * The node-llama-cpp model and context of one worker: loads once, renders prompts through the
 * model's chat template, and hands out one context sequence per slot. Only the worker's
 * message loop calls it.
 */
export class Engine {
  readonly llama: Llama;
  readonly model: LlamaModel;
  /** The KV cache's context; none when a llama-server holds it (`settings.server`: the model is loaded for its vocabulary only). */
  readonly context: LlamaContext | undefined;
  /** Tokens per slot, and the prompt batch size. */
  readonly contextSize: number;
  readonly batchSize: number;
  readonly chatWrapper: ChatWrapper;
  readonly settings: WorkerSettings;
  readonly #grammars = new LruMap<string, Promise<LlamaGrammar>>(64);
  readonly #tokenizer: Tokenizer;
  /** The template's thought segment, and the text with which its generation prompt opens it (if it does). */
  readonly #thought: { readonly syntax: ThoughtSyntax; readonly prefix: LlamaText; readonly isOpenedByTemplate: boolean } | undefined;
  readonly #renderer: ChatRenderer;
  #fimRepoTokens: { repo: Token | undefined; sep: Token | undefined } | undefined;
  readonly #stops = new LruMap<string, { templateStops: string[]; stopTokens: ReadonlySet<Token> }>(16);

  private constructor(llama: Llama, model: LlamaModel, context: LlamaContext | undefined, settings: WorkerSettings) {
    this.llama = llama;
    this.model = model;
    this.context = context;
    this.contextSize = context?.contextSize ?? settings.contextSize;
    this.batchSize = context?.batchSize ?? Math.min(settings.batchSize, settings.contextSize);
    this.settings = settings;
    // Earlier thoughts stay in the rendered history: a client that sends its reasoning items back
    // must get the prompt the KV cache already holds, not one with the thoughts cut out.
    this.chatWrapper = resolveChatWrapper(model, { customWrapperSettings: { qwen: { keepOnlyLastThought: false }, deepSeek: { keepOnlyLastThought: false } } });
    this.#tokenizer = createCachingTokenizer(model);
    this.#thought = resolveThought(this.chatWrapper);
    this.#renderer = new ChatRenderer(this.chatWrapper, this.#tokenizer, this.#thought, (messages) => toChatHistory(messages, this.#thought?.syntax));
  }

  /** Whether chat prompts continue incrementally (the template passed the probe), and why not. */
  get incrementalRendering(): { readonly isIncremental: boolean; readonly failure?: string } {
    return { isIncremental: this.#renderer.isIncremental, failure: this.#renderer.probeFailure };
  }

  /** Loads the model and creates one context with `slots` sequences (with `settings.server`, the model's vocabulary only). */
  static async create(settings: WorkerSettings, onLog: (level: 'warn' | 'error', message: string) => void): Promise<Engine> {
    const llama = await getLlama({
      gpu: settings.gpu === 'off' ? false : settings.gpu,
      // Threads are set per context; 0 lets the context use exactly what it asks for.
      maxThreads: 0,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) onLog('error', message.trim());
        else if (level === LlamaLogLevel.warn) onLog('warn', message.trim());
      },
      build: 'never',
      progressLogs: false,
    });
    if (settings.server) {
      // A llama-server holds the KV cache and decodes: this worker only renders and tokenizes.
      const model = await llama.loadModel({ modelPath: settings.modelPath, vocabOnly: true });
      const engine = new Engine(llama, model, undefined, settings);
      await engine.#renderer.probe(new AbortController().signal);
      return engine;
    }
    const model = await llama.loadModel({ modelPath: settings.modelPath });
    const context = await model.createContext({
      contextSize: settings.contextSize,
      sequences: settings.slots,
      threads: Math.max(settings.threads, settings.batchThreads),
      batchSize: Math.min(settings.batchSize, settings.contextSize),
    });
    const isSplit = splitThreads(context, { decodeThreads: settings.threads, batchThreads: settings.batchThreads, minBatchTokens: settings.batchThreadsMinTokens });
    if (!isSplit) onLog('warn', `per-batch thread counts unavailable in this node-llama-cpp; using ${Math.max(settings.threads, settings.batchThreads)} threads for everything`);
    const engine = new Engine(llama, model, context, settings);
    await engine.#renderer.probe(new AbortController().signal);
    return engine;
  }

  /** What the parent needs to know about the loaded model. */
  facts(): WorkerModelFacts {
    const info = this.model.fileInfo;
    return {
      contextSize: this.contextSize,
      trainContextSize: this.model.trainContextSize,
      architecture: String(info.metadata.general?.architecture ?? 'unknown'),
      modelName: String(info.metadata.general?.name ?? ''),
      chatWrapper: this.chatWrapper.wrapperName,
      hasInfill: this.hasInfill(),
      threads: this.settings.threads,
      batchThreads: this.settings.batchThreads,
      maxTokenChars: this.#maxTokenChars(),
      incrementalChat: this.incrementalRendering,
      hasToolCalls: this.toolCallSyntax() !== undefined,
      hasThinking: this.#thought !== undefined,
    };
  }

  /** The longest text any one token stands for: a prompt of n characters has at least n / this many tokens. */
  #maxTokenChars(): number {
    let longest = 1;
    const size = this.model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
    for (let id = 0; id < size; id++) longest = Math.max(longest, this.model.detokenize([id as Token], false).length);
    return longest;
  }

  /** Tokenizes the request input the way the model expects it. */
  async prepare(request: GenerateRequest, signal: AbortSignal, memo?: RenderedChat): Promise<PreparedPrompt> {
    const input = request.input;
    switch (input.type) {
      case 'text': {
        if (input.tokens) return { tokens: this.#checkedTokens(input.tokens), templateStops: [], stopTokens: new Set() };
        const tokens = this.model.tokenize(input.prompt, input.parseSpecial === true);
        // Nothing to continue from: start at the beginning-of-sequence token when the model has one.
        const bos = this.model.tokens.bos;
        if (tokens.length === 0 && bos != null) tokens.push(bos);
        if (tokens.length === 0) throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'prompt', details: { detail: "Invalid value for 'prompt': it must not be empty." } });
        return { tokens, templateStops: [], stopTokens: new Set() };
      }
      case 'infill':
        return input.repo ? this.#prepareRepoInfill(input.prefix, input.suffix, input.repo, request.maxTokens) : this.prepareInfill(input.prefix, input.suffix);
      case 'chat': {
        // tool_choice none still renders the tools, so the prompt stays the cached prefix of the turns around it.
        const prompt = await this.prepareChat(input.messages, request.tools ?? [], request.toolChoice !== 'none', signal, memo);
        if (!request.continuation) return prompt;
        // The answer already began: the prompt ends with its text, and the model goes on from there
        // (the memo stays the conversation's own, which the next turn continues).
        // It is answer text: any thought the template opens is over, so the output is all answer.
        return { ...prompt, tokens: [...prompt.tokens, ...this.model.tokenize(request.continuation, false)], thought: undefined };
      }
    }
  }

  /** Token ids from a client, each checked against the vocabulary. */
  #checkedTokens(ids: readonly number[]): Token[] {
    const size = this.model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
    for (const [i, id] of ids.entries()) {
      if (!Number.isInteger(id) || id < 0 || id >= size) {
        throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'prompt', details: { detail: `Invalid value for 'prompt': token id ${id} at ${i} is not in the vocabulary (0 to ${size - 1}).` } });
      }
    }
    return ids as Token[];
  }

  /** Grammars and forced-call settings for one request. */
  async plan(request: GenerateRequest, prompt: PreparedPrompt): Promise<GenerationPlan> {
    const tokenize = (text: string) => this.tokenizeWithSpecials(text);
    const grammar = request.responseFormat ? await this.grammarFor(request.responseFormat) : undefined;
    const choice = request.toolChoice ?? 'auto';
    const tools = request.tools ?? [];
    const prefix = this.toolCallPrefix();
    // Drafts only make greedy decoding faster; with sampling they are ignored, so output never depends on them.
    const isGreedy = (request.sampling.temperature ?? 1) === 0;
    const predictionTokens = request.prediction && isGreedy && !grammar && !prompt.tools ? this.model.tokenize(request.prediction, false) : undefined;
    if (!prompt.tools || !prefix || (choice !== 'required' && typeof choice !== 'object')) return { grammar, tokenize, predictionTokens };
    const names = typeof choice === 'object' ? [choice.name] : tools.map((t) => t.name);
    return {
      tokenize,
      forcedCall: {
        ...prefix,
        name: names.length === 1 ? names[0] : await this.grammarFor({ type: 'one_of', values: names }),
        argumentsGrammar: (name) => this.grammarFor({ type: 'tool_arguments', tool: tools.find((t) => t.name === name) ?? { name } }),
        customInputGrammar: async (name) => {
          const format = tools.find((t) => t.name === name)?.custom?.format;
          if (format?.type !== 'grammar') return undefined;
          const gbnf = format.syntax === 'lark' ? larkToGbnf(format.definition) : regexToGbnf(format.definition);
          // A grammar outside the supported subset leaves the input free (the README lists what is enforced).
          if (!gbnf.ok) return undefined;
          // A grammar llama.cpp refuses (e.g. repetitions it finds too large) leaves the input free, like an unsupported one.
          return this.grammarFor({ type: 'gbnf', gbnf: gbnf.gbnf }).catch(() => undefined);
        },
      },
    };
  }

  /** How this model's chat template writes a tool call, if it supports tools. */
  toolCallSyntax(): ToolCallSyntax | undefined {
    const call = this.chatWrapper.settings.functions?.call;
    if (!call) return undefined;
    const start = firstMarker(LlamaText(call.prefix));
    const end = lastMarker(LlamaText(call.suffix));
    return start && end ? { start, end } : undefined;
  }

  /** The text a forced call starts with, up to where the function name goes. */
  toolCallPrefix(): { beforeName: string; afterName: string } | undefined {
    const call = this.chatWrapper.settings.functions?.call;
    if (!call) return undefined;
    return { beforeName: LlamaText(call.prefix).toString(), afterName: LlamaText(call.paramsPrefix).toString() };
  }

  /** Tokenizes text in which the template's special tokens are written literally. */
  tokenizeWithSpecials(text: string): Token[] {
    return this.model.tokenize(text, true);
  }

  /** Schema text held by the grammar cache (bounded by count and by this many characters). */
  get grammarCacheChars(): number {
    let chars = 0;
    for (const [key] of this.#grammars.entries()) chars += key.length;
    return chars;
  }

  /** Grammar for a response format or a tool's arguments; compiled once per schema. */
  grammarFor(format: GrammarSource): Promise<LlamaGrammar> {
    const key = JSON.stringify(format);
    let grammar = this.#grammars.get(key);
    if (!grammar) {
      grammar = this.#createGrammar(format);
      // Bounded in bytes too (a compiled grammar grows with its schema): the oldest go first.
      this.#grammars.set(key, grammar);
      let bytes = 0;
      for (const [cached] of this.#grammars.entries()) bytes += cached.length;
      for (const [oldest] of this.#grammars.entries()) {
        if (bytes <= maxGrammarCacheChars || this.#grammars.size <= 1) break;
        bytes -= oldest.length;
        this.#grammars.delete(oldest);
      }
      grammar.catch(() => this.#grammars.delete(key));
    }
    return grammar;
  }

  async #createGrammar(format: GrammarSource): Promise<LlamaGrammar> {
    switch (format.type) {
      case 'gbnf':
        return this.llama.createGrammar({ grammar: format.gbnf });
      case 'json_object':
        return this.llama.getGrammarFor('json');
      case 'tool_arguments':
        return format.tool.parameters
          ? this.#schemaGrammar(format.tool.parameters, 'tools')
          : this.llama.getGrammarFor('json');
      case 'json_schema':
        return this.#schemaGrammar(format.schema, 'text.format.schema');
      case 'one_of':
        return this.llama.createGrammar({ grammar: `root ::= ${format.values.map((v) => JSON.stringify(v)).join(' | ')}` });
    }
  }

  async #schemaGrammar(schema: Readonly<Record<string, unknown>>, param: string): Promise<LlamaGrammar> {
    try {
      return await this.llama.createGrammarForJsonSchema(schema as never);
    } catch (err) {
      throw new FlintError('FLINT_ERR_INVALID_VALUE', {
        param,
        details: { detail: `The JSON schema cannot be enforced: ${(err as Error).message}` },
        cause: err,
      });
    }
  }

  hasInfill(): boolean {
    const infill = this.model.tokens.infill;
    return infill.prefix != null && infill.suffix != null && infill.middle != null;
  }

  private prepareInfill(prefix: string, suffix: string): PreparedPrompt {
    const infill = this.model.tokens.infill;
    if (infill.prefix == null || infill.suffix == null || infill.middle == null) {
      throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', {
        param: 'suffix',
        details: { detail: 'The served model has no fill-in-the-middle tokens.' },
      });
    }
    const tokens = [
      infill.prefix,
      ...this.model.tokenize(prefix, false),
      infill.suffix,
      ...this.model.tokenize(suffix, false),
      infill.middle,
    ];
    return { tokens, templateStops: [], stopTokens: new Set() };
  }

  /**
   * llama-server's `/infill` prompt (its `format_infill`), so clients tuned to it get the same
   * tokens: the repo-level FIM pattern where the model has the tokens for it,
   *
   *   [FIM_REP]myproject\n [FIM_SEP]{filename}\n{text} ... [FIM_SEP]filename\n
   *   [FIM_PRE]{prefix}{prompt}[FIM_SUF]{suffix}[FIM_MID]
   *
   * (chunks separated by a "--- snippet ---" line where there is no FIM_SEP token), the prefix
   * cut to its last 3/4 of a batch (at a cut that moves in steps of 1/8 batch), the suffix to what
   * is left of the batch's last quarter, and
   * the extra context to the end of what fits the context beside a batch and twice `n_predict`.
   * The extra chunks come first, so successive completions in one file reuse them from the cache.
   */
  #prepareRepoInfill(prefix: string, suffix: string, repo: { readonly extra: readonly { filename: string; text: string }[]; readonly prompt: string }, maxTokens: number | undefined): PreparedPrompt {
    const infill = this.model.tokens.infill;
    if (infill.prefix == null || infill.suffix == null || infill.middle == null) {
      throw new FlintError('FLINT_ERR_UNSUPPORTED_PARAM', { param: 'input_suffix', details: { detail: 'The served model has no fill-in-the-middle tokens.' } });
    }
    const tokenize = (text: string) => this.model.tokenize(text, false);
    const { repo: repoToken, sep } = this.#repoTokens();
    const extra: Token[] = [];
    if (repoToken !== undefined) extra.push(repoToken, ...tokenize('myproject\n'));
    for (const chunk of repo.extra) {
      if (sep !== undefined) extra.push(sep, ...tokenize(`${chunk.filename}\n`));
      else extra.push(...tokenize('\n\n--- snippet ---\n\n'));
      for (const token of tokenize(chunk.text)) extra.push(token);
    }
    if (sep !== undefined) extra.push(sep, ...tokenize('filename\n'));
    const batch = this.batchSize;
    const promptTokens = tokenize(repo.prompt);
    const prefixTokens = tokenize(prefix);
    const suffixTokens = tokenize(suffix);
    // The prefix keeps (at most) its last 3/4 batch, cut where llama-server cuts it but rounded to
    // steps of 1/8 batch: the cut then stays put while the user types near the cursor, so the next
    // completion still finds everything up to the edit in the cache.
    const step = Math.max(1, Math.floor(batch / 8));
    const prefixStart = Math.ceil(Math.max(0, prefixTokens.length - 3 * Math.floor(batch / 4)) / step) * step;
    const prefixTake = prefixTokens.length - prefixStart;
    const suffixTake = Math.min(suffixTokens.length, Math.max(0, Math.floor(batch / 4) - (2 + promptTokens.length)));
    const extraTake = Math.min(Math.max(0, this.contextSize - batch - 2 * (maxTokens ?? 0)), extra.length);
    const tokens: Token[] = extra.slice(extra.length - extraTake);
    if (this.model.tokens.shouldPrependBosToken && this.model.tokens.bos != null) tokens.push(this.model.tokens.bos);
    tokens.push(infill.prefix, ...prefixTokens.slice(prefixTokens.length - prefixTake), ...promptTokens);
    tokens.push(infill.suffix, ...suffixTokens.slice(0, suffixTake), infill.middle);
    return { tokens, templateStops: [], stopTokens: new Set(), truncated: prefixTake < prefixTokens.length || suffixTake < suffixTokens.length || extraTake < extra.length };
  }

  /** The repo-level FIM tokens (llama.cpp's FIM_REP and FIM_SEP), from the GGUF metadata or by their usual names. */
  #repoTokens(): { repo: Token | undefined; sep: Token | undefined } {
    if (this.#fimRepoTokens) return this.#fimRepoTokens;
    const ggml = this.model.fileInfo.metadata.tokenizer?.ggml as Record<string, unknown> | undefined;
    const named = (key: string, names: readonly string[]): Token | undefined => {
      if (typeof ggml?.[key] === 'number') return ggml[key] as Token;
      for (const name of names) {
        const tokens = this.model.tokenize(name, true);
        if (tokens.length === 1 && this.model.detokenize(tokens, true) === name && this.model.tokenize(name, false).length > 1) return tokens[0];
      }
      return undefined;
    };
    this.#fimRepoTokens = {
      repo: named('fim_rep_token_id', ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>']),
      sep: named('fim_sep_token_id', ['<|file_sep|>', '<file_sep>', '<|file_separator|>']),
    };
    return this.#fimRepoTokens;
  }

  private async prepareChat(messages: readonly ChatMessage[], tools: readonly ToolSpec[], isCallable: boolean, signal: AbortSignal, memo: RenderedChat | undefined): Promise<PreparedPrompt> {
    const started = performance.now();
    const { rendered, mode, reason } = await this.#renderer.render(messages, tools, memo, signal);
    const renderMs = performance.now() - started;
    const syntax = tools.length > 0 ? this.toolCallSyntax() : undefined;
    let thought: PreparedPrompt['thought'];
    if (this.#thought) thought = rendered.openedThought ? { syntax: this.#thought.syntax, openedByPrompt: this.#thought.prefix.toString() } : { syntax: this.#thought.syntax };
    const { templateStops, stopTokens } = this.#stopsFor(rendered.stopGenerationTriggers);
    return {
      tokens: rendered.tokens,
      templateStops,
      stopTokens,
      tools: syntax && isCallable ? { syntax, names: tools.map((t) => t.name) } : undefined,
      thought,
      render: { rendered, mode, reason, ms: renderMs },
    };
  }

  /** The template's stop triggers as single stop tokens and stop texts; the same few every turn, so kept. */
  #stopsFor(triggers: readonly LlamaText[]): { templateStops: string[]; stopTokens: ReadonlySet<Token> } {
    const key = JSON.stringify(triggers.map((t) => LlamaText(t).toJSON()));
    let stops = this.#stops.get(key);
    if (!stops) {
      const templateStops: string[] = [];
      const stopTokens = new Set<Token>();
      for (const trigger of triggers) {
        const triggerTokens = LlamaText(trigger).tokenize(this.model.tokenizer);
        if (triggerTokens.length === 1) stopTokens.add(triggerTokens[0]);
        else {
          const text = LlamaText(trigger).toString();
          if (text.length > 0) templateStops.push(text);
        }
      }
      stops = { templateStops, stopTokens };
      this.#stops.set(key, stops);
    }
    return { templateStops: [...stops.templateStops], stopTokens: stops.stopTokens };
  }

  async dispose(): Promise<void> {
    await this.context?.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

/**
 * Maps neutral messages to node-llama-cpp's chat history. Tool results are attached to the
 * assistant call they answer, which is how node-llama-cpp's wrappers render function calls.
 */
export function toChatHistory(messages: readonly ChatMessage[], thought?: ThoughtSyntax): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const results = new Map<string, string>();
  for (const m of messages) if (m.role === 'tool' && m.toolCallId) results.set(m.toolCallId, m.content);
  const answered = new Set<string>();
  for (const m of messages) {
    switch (m.role) {
      case 'system':
      case 'developer':
        history.push({ type: 'system', text: m.content });
        break;
      case 'user':
        history.push({ type: 'user', text: m.content });
        break;
      case 'assistant': {
        const response: Array<string | ChatModelFunctionCall | ChatModelSegment> = [];
        if (m.reasoning !== undefined && thought) response.push(toThoughtSegment(m.reasoning, thought));
        if (m.content) response.push(m.content);
        for (const call of m.toolCalls ?? []) {
          answered.add(call.id);
          response.push({ type: 'functionCall', name: call.name, params: parseJsonOr(call.arguments), result: results.get(call.id) ?? '' });
        }
        history.push({ type: 'model', response });
        break;
      }
      case 'tool':
        if (!m.toolCallId || !answered.has(m.toolCallId)) history.push({ type: 'user', text: m.content });
        break;
    }
  }
  return history;
}

/**
 * A thought exactly as it stands in an earlier turn's context (`raw`, markers included): rendered
 * verbatim, with the markers as special tokens, so the re-rendered history is the cached prefix.
 */
function toThoughtSegment(raw: string, syntax: ThoughtSyntax): ChatModelSegment {
  const values: Array<string | SpecialTokensText> = [];
  let rest = raw;
  for (const marker of [syntax.start, syntax.end]) {
    const at = rest.indexOf(marker);
    if (at === -1) continue;
    if (at > 0) values.push(rest.slice(0, at));
    values.push(new SpecialTokensText(marker));
    rest = rest.slice(at + marker.length);
  }
  if (rest.length > 0) values.push(rest);
  const text = raw.replace(syntax.start, '').replace(syntax.end, '').trim();
  return { type: 'segment', segmentType: 'thought', text, ended: raw.includes(syntax.end), raw: LlamaText(values).toJSON() };
}

/**
 * The template's thought segment, from the chat wrapper's settings, and whether the generation
 * prompt opens it (`openOnResponseStart`: templates of reasoning-only models end their generation
 * prompt with the thought prefix, so the model starts inside the thought).
 */
function resolveThought(wrapper: ChatWrapper): { syntax: ThoughtSyntax; prefix: LlamaText; isOpenedByTemplate: boolean } | undefined {
  const segment = wrapper.settings.segments?.thought;
  // A prefix of {type: 'openedOnStart'} has no marker text to find in the output: not supported.
  if (!segment?.prefix || !segment.suffix || (typeof segment.prefix === 'object' && 'type' in segment.prefix)) return undefined;
  const prefix = LlamaText(segment.prefix);
  const start = prefix.toString().trim();
  const end = LlamaText(segment.suffix).toString().trim();
  if (!start || !end) return undefined;
  return { syntax: { start, end }, prefix, isOpenedByTemplate: segment.openOnResponseStart === true };
}

/** The first special-token piece of a marker (e.g. `<tool_call>`), else its leading text. */
function firstMarker(text: LlamaText): string | undefined {
  for (const value of text.values) {
    if (typeof value === 'string') {
      if (value.trim().length > 0) return value.trim();
    } else if (value instanceof SpecialTokensText) return value.value;
  }
  return undefined;
}

/** The last special-token piece of a marker (e.g. `</tool_call>`), else its trailing text. */
function lastMarker(text: LlamaText): string | undefined {
  for (let i = text.values.length - 1; i >= 0; i--) {
    const value = text.values[i];
    if (typeof value === 'string') {
      if (value.trim().length > 0) return value.trim();
    } else if (value instanceof SpecialTokensText) return value.value;
  }
  return undefined;
}

/** Tool-call arguments as an object for the template; text that nests too deep to render safely stays text. */
function parseJsonOr(text: string): unknown {
  if (checkJsonShape(text, argumentShapeLimits)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

import {
  getLlama,
  LlamaLogLevel,
  LlamaText,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatModelFunctionCall,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { FlintError } from '../errors/FlintError.js';
import type { ChatMessage, GenerateInput } from '../core/types.js';
import type { WorkerModelFacts, WorkerSettings } from '../ipc/messages.js';

/** A prompt ready for a slot: its tokens, plus stops the chat template adds. */
export interface PreparedPrompt {
  readonly tokens: Token[];
  /** Stop texts from the chat template that are not single EOG tokens. */
  readonly templateStops: string[];
  /** Single tokens that end generation besides the model's EOG tokens. */
  readonly stopTokens: ReadonlySet<Token>;
}

/**
 * The node-llama-cpp model and context of one worker: loads once, renders prompts through the
 * model's chat template, and hands out one context sequence per slot. Only the worker's
 * message loop calls it.
 */
export class Engine {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly chatWrapper: ChatWrapper;
  readonly settings: WorkerSettings;

  private constructor(llama: Llama, model: LlamaModel, context: LlamaContext, settings: WorkerSettings) {
    this.llama = llama;
    this.model = model;
    this.context = context;
    this.settings = settings;
    this.chatWrapper = resolveChatWrapper(model);
  }

  /** Loads the model and creates one context with `slots` sequences. */
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
    const model = await llama.loadModel({ modelPath: settings.modelPath });
    const context = await model.createContext({
      contextSize: settings.contextSize,
      sequences: settings.slots,
      threads: settings.threads,
      batchSize: Math.min(settings.batchSize, settings.contextSize),
    });
    return new Engine(llama, model, context, settings);
  }

  /** What the parent needs to know about the loaded model. */
  facts(): WorkerModelFacts {
    const info = this.model.fileInfo;
    return {
      contextSize: this.context.contextSize,
      trainContextSize: this.model.trainContextSize,
      architecture: String(info.metadata.general?.architecture ?? 'unknown'),
      modelName: String(info.metadata.general?.name ?? ''),
      chatWrapper: this.chatWrapper.wrapperName,
      hasInfill: this.hasInfill(),
      threads: this.context.currentThreads,
    };
  }

  /** Tokenizes the request input the way the model expects it. */
  prepare(input: GenerateInput): PreparedPrompt {
    switch (input.type) {
      case 'text':
        return { tokens: this.model.tokenize(input.prompt, false), templateStops: [], stopTokens: new Set() };
      case 'infill':
        return this.prepareInfill(input.prefix, input.suffix);
      case 'chat':
        return this.prepareChat(input.messages);
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

  private prepareChat(messages: readonly ChatMessage[]): PreparedPrompt {
    const history = toChatHistory(messages);
    history.push({ type: 'model', response: [] });
    const state = this.chatWrapper.generateContextState({ chatHistory: history });
    const tokens = state.contextText.tokenize(this.model.tokenizer);
    const templateStops: string[] = [];
    const stopTokens = new Set<Token>();
    for (const trigger of state.stopGenerationTriggers) {
      const triggerTokens = LlamaText(trigger).tokenize(this.model.tokenizer);
      if (triggerTokens.length === 1) stopTokens.add(triggerTokens[0]);
      else {
        const text = LlamaText(trigger).toString();
        if (text.length > 0) templateStops.push(text);
      }
    }
    return { tokens, templateStops, stopTokens };
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

/**
 * Maps neutral messages to node-llama-cpp's chat history. Tool results are attached to the
 * assistant call they answer, which is how node-llama-cpp's wrappers render function calls.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
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
        const response: Array<string | ChatModelFunctionCall> = [];
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

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

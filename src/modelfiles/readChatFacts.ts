/** What the gateway must know of a model it does not load itself (the llama-server backend). */
export interface ChatFacts {
  readonly architecture: string;
  readonly trainContextSize: number;
  /** Fill-in-the-middle tokens, by id in the metadata or by the names llama.cpp recognises in the vocabulary. */
  readonly hasInfill: boolean;
  /** Its chat template renders tools / thoughts. */
  readonly hasToolCalls: boolean;
  readonly hasThinking: boolean;
  /** An upper bound of the characters one token stands for. */
  readonly maxTokenChars: number;
}

/** Prefix, suffix and middle token names llama.cpp's vocabulary loader recognises. */
const fimNames: ReadonlyArray<readonly [string, string, string]> = [
  ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'],
  ['<fim-prefix>', '<fim-suffix>', '<fim-middle>'],
  ['<fim_prefix>', '<fim_suffix>', '<fim_middle>'],
  ['<｜fim▁begin｜>', '<｜fim▁hole｜>', '<｜fim▁end｜>'],
  ['<PRE>', '<SUF>', '<MID>'],
  ['[PREFIX]', '[SUFFIX]', '[MIDDLE]'],
];

/**
 * Reads the chat-relevant facts of a GGUF from its header with node-llama-cpp's GGUF reader (pure
 * JavaScript, no native code), for a gateway whose engine is another process (llama-server).
 */
export async function readChatFacts(file: string): Promise<ChatFacts> {
  const { readGgufFileInfo } = await import('node-llama-cpp');
  const info = await readGgufFileInfo(file, { readTensorInfo: false, logWarnings: false });
  const metadata = info.metadata as unknown as Record<string, Record<string, unknown> | undefined> & {
    general?: { architecture?: unknown };
    tokenizer?: { chat_template?: unknown; ggml?: { tokens?: unknown; fim_pre_token_id?: unknown; fim_suf_token_id?: unknown; fim_mid_token_id?: unknown } };
  };
  const architecture = typeof metadata.general?.architecture === 'string' ? metadata.general.architecture : 'unknown';
  const trainContextSize = Number(metadata[architecture]?.context_length) || 0;
  const ggml = metadata.tokenizer?.ggml;
  const tokens = Array.isArray(ggml?.tokens) ? (ggml.tokens as unknown[]).filter((t): t is string => typeof t === 'string') : [];
  const vocabulary = new Set(tokens);
  const hasFimIds = ggml?.fim_pre_token_id !== undefined && ggml.fim_suf_token_id !== undefined && ggml.fim_mid_token_id !== undefined;
  const template = typeof metadata.tokenizer?.chat_template === 'string' ? metadata.tokenizer.chat_template : '';
  let maxTokenChars = 1;
  for (const t of tokens) if (t.length > maxTokenChars) maxTokenChars = t.length;
  return {
    architecture,
    trainContextSize,
    hasInfill: hasFimIds || fimNames.some((names) => names.every((n) => vocabulary.has(n))),
    hasToolCalls: /\btools\b/.test(template),
    hasThinking: template.includes('<think>'),
    maxTokenChars,
  };
}

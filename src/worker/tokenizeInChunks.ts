import { SpecialToken, SpecialTokensText, type LlamaText, type LlamaTextValue, type Token, type Tokenizer } from 'node-llama-cpp';

/** Text longer than this is tokenized in chunks, yielding to the event loop in between. */
const chunkChars = 32 * 1024;
/** Characters on each side of a split that must tokenize the same split or whole. */
const checkChars = 64;

/** Thrown when the signal aborts while tokenizing. */
export class TokenizeAborted extends Error {
  constructor() {
    super('tokenizing was cancelled');
    this.name = 'AbortError';
  }
}

/**
 * `LlamaText.tokenize` that yields: the same tokens, but long texts are tokenized in chunks with
 * a turn of the event loop between them, so a big prompt cannot stall cancels, heartbeats or the
 * other slots' decoding, and a cancel stops it. A text is split only after a newline followed by
 * a non-space character, and only where tokenizing the neighbourhood of the split in two parts
 * gives the tokens of tokenizing it whole (merges never cross such a split).
 */
export async function tokenizeLlamaText(text: LlamaText, tokenizer: Tokenizer, signal: AbortSignal): Promise<Token[]> {
  return (await tokenizeValues(text.values, tokenizer, signal, false)).tokens;
}

/**
 * Where a rendered text can be cut for incremental tokenization: right after a special value
 * that stays a value of its own whatever is appended (so the tokens before it never change).
 */
export interface TokenSplit {
  /** Index of the special value in the tokenized values. */
  readonly valueIndex: number;
  /** Tokens up to and including it. */
  readonly tokens: number;
}

/**
 * Tokenizes LlamaText values as `LlamaText.tokenize` does (node-llama-cpp 3.22: runs of text
 * between special values, every run after the first trimmed of its leading space), in chunks.
 * `isContinuation`: the values continue a text that already has content (they were cut from it
 * right after a special value), so they tokenize exactly as they would in place.
 * Also returns the last split: the last special value that appending text cannot merge with
 * (a special-tokens text at the very end would merge with one appended after it).
 */
export async function tokenizeValues(
  values: readonly LlamaTextValue[],
  tokenizer: Tokenizer,
  signal: AbortSignal,
  isContinuation: boolean,
): Promise<{ tokens: Token[]; split: TokenSplit | undefined }> {
  let textToTokenize = '';
  const res: Token[] = [];
  const hasContent = () => isContinuation || res.length > 0 || textToTokenize.length > 0;
  const flush = async () => {
    const options = hasContent() ? 'trimLeadingSpace' : undefined;
    for (const token of await tokenizeText(tokenizer, textToTokenize, options, signal)) res.push(token);
    textToTokenize = '';
  };
  let split: TokenSplit | undefined;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value instanceof SpecialToken) {
      await flush();
      for (const token of value.tokenize(tokenizer)) res.push(token);
      split = { valueIndex: i, tokens: res.length };
    } else if (value instanceof SpecialTokensText) {
      const trim = hasContent();
      await flush();
      for (const token of value.tokenize(tokenizer, trim)) res.push(token);
      if (i < values.length - 1) split = { valueIndex: i, tokens: res.length };
    } else textToTokenize += value;
  }
  await flush();
  return { tokens: res, split };
}

async function tokenizeText(tokenizer: Tokenizer, text: string, options: 'trimLeadingSpace' | undefined, signal: AbortSignal): Promise<Token[]> {
  if (text.length <= chunkChars) return tokenizer(text, false, options);
  const out: Token[] = [];
  let from = 0;
  let isFirst = true;
  while (from < text.length) {
    if (signal.aborted) throw new TokenizeAborted();
    const to = text.length - from <= chunkChars ? text.length : safeSplit(tokenizer, text, from + chunkChars) ?? text.length;
    for (const token of tokenizer(text.slice(from, to), false, isFirst ? options : 'trimLeadingSpace')) out.push(token);
    isFirst = false;
    from = to;
    if (from < text.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (signal.aborted) throw new TokenizeAborted();
  return out;
}

/** The first split at or after `at` that tokenizes the same split or whole; undefined if none nearby. */
function safeSplit(tokenizer: Tokenizer, text: string, at: number): number | undefined {
  const limit = Math.min(text.length - checkChars, at + chunkChars / 4);
  for (let i = text.indexOf('\n', at); i !== -1 && i < limit; i = text.indexOf('\n', i + 1)) {
    const split = i + 1;
    if (/\s/.test(text[split] ?? ' ')) continue;
    const left = text.slice(split - checkChars, split);
    const right = text.slice(split, split + checkChars);
    const whole = tokenizer(left + right, false, 'trimLeadingSpace');
    const parts = [...tokenizer(left, false, 'trimLeadingSpace'), ...tokenizer(right, false, 'trimLeadingSpace')];
    if (whole.length === parts.length && whole.every((t, k) => t === parts[k])) return split;
  }
  return undefined;
}


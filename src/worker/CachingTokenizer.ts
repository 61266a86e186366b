import type { LlamaModel, Token, Tokenizer } from 'node-llama-cpp';
import { LruMap } from '../utils/LruMap.js';

/**
 * Every non-empty piece is cached: even a short one costs up to three native calls when it is
 * tokenized with `trimLeadingSpace` (tokenize with a workaround token, detokenize, check), and a
 * rendered conversation has a few such pieces per message (role headers, tool-call JSON).
 */
const minCachedChars = 1;

/**
 * A tokenizer for rendered chat templates that remembers recent text pieces. LlamaText
 * tokenizes the text between special tokens piece by piece, and a conversation's earlier
 * messages are the same pieces turn after turn, so only new messages are tokenized again:
 * a 13k-token conversation costs ~6 ms to tokenize whole on a small CPU, on every turn.
 * Bounded by entry count and by total cached characters.
 */
export function createCachingTokenizer(model: LlamaModel, maxEntries = 8192, maxChars = 8 * 1024 * 1024): Tokenizer {
  const base = model.tokenizer;
  const cache = new LruMap<string, Token[]>(maxEntries);
  let cachedChars = 0;
  const tokenize = ((text: string, specialTokens?: boolean | 'builtin', options?: 'trimLeadingSpace') => {
    if (specialTokens === 'builtin' || text.length < minCachedChars || text.length > maxChars / 4) {
      return (base as (t: string, s?: boolean | 'builtin', o?: 'trimLeadingSpace') => Token[])(text, specialTokens, options);
    }
    const key = `${specialTokens ? 1 : 0}${options === 'trimLeadingSpace' ? 1 : 0}${text}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const tokens = base(text, specialTokens, options);
    cache.set(key, tokens);
    cachedChars += key.length;
    if (cachedChars > maxChars) {
      // Rare: start over rather than track sizes per entry.
      for (const [k] of [...cache.entries()]) cache.delete(k);
      cachedChars = 0;
    }
    return tokens;
  }) as Tokenizer;
  return Object.assign(tokenize, { detokenize: base.detokenize, isSpecialToken: base.isSpecialToken, isEogToken: base.isEogToken });
}

/**
 * Deterministic code-like text for prompts. Every prompt starts with a nonce so neither side can
 * reuse a cached prefix unless a scenario repeats a prompt on purpose (the "unique first words"
 * of a cold prompt).
 */

const vocabulary = (
  'function parse value return const let index result buffer token stream cache slot worker ' +
  'async await import export class interface type string number boolean promise error throw ' +
  'request response header body status server client socket event emit listen close open read ' +
  'write file path module config option default limit offset length count map set filter reduce ' +
  'context sequence prefix suffix prompt model tokenizer decode encode batch queue lease timeout'
).split(' ');
const punctuation = ['(', ')', '{', '}', ';', ',', '.', ' =', ' =>', ':', '\n', '\n  '];

/** mulberry32: a tiny seeded PRNG, so the same seed gives the same text on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 32-bit hash of a string, to seed `rng` from names. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** About `chars` characters of code-like words and punctuation. */
export function codeText(seed: number, chars: number): string {
  const next = rng(seed);
  let out = '';
  while (out.length < chars) {
    out += vocabulary[Math.floor(next() * vocabulary.length)];
    out += next() < 0.3 ? punctuation[Math.floor(next() * punctuation.length)] : ' ';
  }
  return out.slice(0, chars);
}

let nonceCounter = 0;

/** A never-repeated first phrase ("session 17 k3x9q:"). */
export function nonce(): string {
  nonceCounter++;
  return `session ${nonceCounter} ${Math.random().toString(36).slice(2, 8)}:`;
}

/**
 * Text that tokenizes to about `tokens` tokens with the model's tokenizer: code-like words,
 * cut at a token boundary and turned back into text, led by `lead` (the nonce).
 */
export function textOfTokens(lead: string, tokens: number, tokenizer: { tokenize(text: string): readonly number[]; detokenize(tokens: readonly number[]): string }): string {
  const budget = Math.max(1, tokens - tokenizer.tokenize(lead + ' ').length);
  let chars = budget * 6;
  let body = codeText(hashSeed(lead), chars);
  // Grow until long enough; code words average 4–6 characters per token on BPE vocabularies.
  for (let i = 0; i < 8 && tokenizer.tokenize(body).length < budget; i++) {
    chars *= 2;
    body = codeText(hashSeed(lead), chars);
  }
  const cut = tokenizer.tokenize(body).slice(0, budget);
  return `${lead} ${tokenizer.detokenize(cut)}`;
}

import type { GenerateInput } from '../core/types.js';

/**
 * A cheap, tokenizer-free summary of a prompt's prefix: a chain of block hashes (one block per
 * chat message, or per fixed-size run of raw text) and the total characters up to each block.
 * Two prompts whose first k hashes agree share (with overwhelming probability) their first k
 * blocks, so the slot whose fingerprint matches longest holds the longest reusable KV prefix.
 * Only routing uses it; the worker still compares exact tokens before reusing anything.
 */
export interface PromptFingerprint {
  readonly hashes: readonly number[];
  /** Characters covered by blocks 0..i, inclusive. */
  readonly chars: readonly number[];
}

/** Raw text is cut into blocks of this many characters. */
const textBlockChars = 256;
/** Token-id prompts are cut into blocks of this many tokens. */
const tokenBlock = 32;

/** Fingerprint of a request's input. */
export function toFingerprint(input: GenerateInput): PromptFingerprint {
  const blocks: string[] = [];
  switch (input.type) {
    case 'chat':
      for (const m of input.messages) {
        let block = `${m.role}\u0000${m.content}`;
        for (const call of m.toolCalls ?? []) block += `\u0001${call.id}\u0002${call.name}\u0002${call.arguments}`;
        if (m.toolCallId) block += `\u0003${m.toolCallId}`;
        blocks.push(block);
      }
      break;
    case 'text':
      if (input.tokens) {
        // Token ids in blocks of a few: a prompt that continues another shares all its full blocks.
        for (let at = 0; at < input.tokens.length; at += tokenBlock) blocks.push(`\u0007${input.tokens.slice(at, at + tokenBlock).join(',')}`);
      } else pushTextBlocks(blocks, input.prompt);
      break;
    case 'infill':
      // The repo layout puts the extra chunks first: the part successive completions share.
      for (const chunk of input.repo?.extra ?? []) blocks.push(`\u0006${chunk.filename}\u0000${chunk.text}`);
      blocks.push('\u0004fim');
      pushTextBlocks(blocks, input.prefix);
      blocks.push(`\u0005${input.suffix}`);
      break;
  }
  const hashes: number[] = [];
  const chars: number[] = [];
  let hash = 0x811c9dc5;
  let total = 0;
  for (const block of blocks) {
    hash = fnv1a(block, hash);
    total += block.length;
    hashes.push(hash);
    chars.push(total);
  }
  return { hashes, chars };
}

/** Characters of prefix that two fingerprints share (0 when the first block differs). */
export function sharedChars(a: PromptFingerprint | undefined, b: PromptFingerprint): number {
  if (!a) return 0;
  const n = Math.min(a.hashes.length, b.hashes.length);
  let i = 0;
  while (i < n && a.hashes[i] === b.hashes[i]) i++;
  return i === 0 ? 0 : b.chars[i - 1];
}

function pushTextBlocks(blocks: string[], text: string): void {
  for (let at = 0; at < text.length; at += textBlockChars) blocks.push(text.slice(at, at + textBlockChars));
}

/** 32-bit FNV-1a over UTF-16 code units, continuing from `seed` so hashes chain. */
function fnv1a(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

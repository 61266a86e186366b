import type { LlamaModel, Token } from 'node-llama-cpp';

const maxHeldTokens = 4;
const contextTokens = 4;

/**
 * Turns generated tokens into text without splitting multi-byte characters: tokens whose text
 * ends in an incomplete UTF-8 sequence are held until the character is complete.
 */
export class TokenTextDecoder {
  readonly #model: LlamaModel;
  readonly #isSpecialShown: boolean;
  #pending: Token[] = [];
  #last: Token[] = [];

  /** `isSpecialShown`: render special tokens (e.g. `<tool_call>`) as their text. */
  constructor(model: LlamaModel, isSpecialShown: boolean) {
    this.#model = model;
    this.#isSpecialShown = isSpecialShown;
  }

  /** Adds one token; returns the text that is complete so far (often the token's own text). */
  push(token: Token): string {
    this.#pending.push(token);
    const text = this.#model.detokenize(this.#pending, this.#isSpecialShown, this.#last);
    if (text.endsWith('\uFFFD') && this.#pending.length < maxHeldTokens) return '';
    this.#commit();
    return text;
  }

  /** Whatever is still held at the end of generation. */
  flush(): string {
    if (this.#pending.length === 0) return '';
    const text = this.#model.detokenize(this.#pending, this.#isSpecialShown, this.#last);
    this.#commit();
    return text;
  }

  #commit(): void {
    this.#last = [...this.#last, ...this.#pending].slice(-contextTokens);
    this.#pending = [];
  }
}

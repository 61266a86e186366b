import { partialSuffix } from '../utils/partialSuffix.js';

/** How the chat template marks its thought segment, e.g. `<think>` … `</think>`. */
export interface ThoughtSyntax {
  readonly start: string;
  readonly end: string;
}

/** A piece of generated text: inside the thought segment, or the answer. */
export type SplitPart = { readonly type: 'thought' | 'text'; readonly text: string };

/**
 * Splits generated text into the model's thought segment and its answer. The segment is open from
 * the start when the prompt already opened it (templates that end their generation prompt with
 * `<think>\n`), or opens when the model writes the start marker before any answer text. Text that
 * could be the beginning of a marker is held back, so markers never leak into either stream.
 * `raw` is the segment exactly as it stands in the context (markers and whitespace included),
 * which is what a later turn must render to hit the prompt cache.
 */
export class ThoughtSplitter {
  readonly #syntax: ThoughtSyntax;
  #state: 'before' | 'thought' | 'after';
  #buffer = '';
  #raw: string | undefined;

  /** `openedByPrompt`: the text of the start marker already at the end of the prompt, if any. */
  constructor(syntax: ThoughtSyntax, openedByPrompt: string | undefined) {
    this.#syntax = syntax;
    this.#state = openedByPrompt === undefined ? 'before' : 'thought';
    this.#raw = openedByPrompt;
  }

  /** Whether generated text currently goes to the thought. */
  get isInThought(): boolean {
    return this.#state === 'thought';
  }

  /** The whole segment as it stands in the context, or undefined when the model wrote none. */
  get raw(): string | undefined {
    return this.#raw;
  }

  push(text: string): SplitPart[] {
    if (this.#state === 'after') return text.length > 0 ? [{ type: 'text', text }] : [];
    this.#buffer += text;
    const out: SplitPart[] = [];
    if (this.#state === 'before') {
      const trimmed = this.#buffer.trimStart();
      if (trimmed.startsWith(this.#syntax.start)) {
        const at = this.#buffer.indexOf(this.#syntax.start);
        // Whitespace before the marker is part of the context (so of raw), but no answer.
        this.#raw = this.#buffer.slice(0, at + this.#syntax.start.length);
        this.#buffer = this.#buffer.slice(at + this.#syntax.start.length);
        this.#state = 'thought';
      } else if (this.#syntax.start.startsWith(trimmed)) {
        return out; // could still become the marker
      } else {
        this.#state = 'after';
        const rest = this.#buffer;
        this.#buffer = '';
        return rest.length > 0 ? [{ type: 'text', text: rest }] : [];
      }
    }
    const end = this.#buffer.indexOf(this.#syntax.end);
    if (end === -1) {
      const keep = partialSuffix(this.#buffer, this.#syntax.end);
      this.#emitThought(out, this.#buffer.slice(0, this.#buffer.length - keep));
      this.#buffer = this.#buffer.slice(this.#buffer.length - keep);
      return out;
    }
    this.#emitThought(out, this.#buffer.slice(0, end));
    this.#raw += this.#syntax.end;
    const rest = this.#buffer.slice(end + this.#syntax.end.length);
    this.#buffer = '';
    this.#state = 'after';
    if (rest.length > 0) out.push({ type: 'text', text: rest });
    return out;
  }

  /** End of generation: whatever is held back. */
  flush(): SplitPart[] {
    const rest = this.#buffer;
    this.#buffer = '';
    if (rest.length === 0) return [];
    if (this.#state === 'thought') {
      const out: SplitPart[] = [];
      this.#emitThought(out, rest);
      return out;
    }
    return [{ type: 'text', text: rest }];
  }

  #emitThought(out: SplitPart[], text: string): void {
    if (text.length === 0) return;
    this.#raw += text;
    out.push({ type: 'thought', text });
  }
}


import type { LlamaContextSequence, Token } from 'node-llama-cpp';

/** How many draft tokens are verified in one batch. */
const draftLength = 12;
/** Output tokens used to find where the output continues in the prediction. */
const anchorLength = 3;

/** Counts of draft tokens confirmed and rejected by decoding. */
export interface PredictionStats {
  accepted: number;
  rejected: number;
}

/**
 * Greedy decoding that uses a predicted output (typically the file being edited) as a draft:
 * each step evaluates the last token plus up to `draftLength` predicted tokens in one batch,
 * keeps the predicted tokens that greedy decoding would have chosen anyway, and erases the
 * rest from the KV cache. The output is the same as plain greedy decoding, produced in fewer
 * steps when the prediction is right. (node-llama-cpp's own TokenPredictor path checks only
 * one draft token per step in 3.22, so this uses controlledEvaluate directly.)
 */
export class PredictedDecoder {
  readonly #sequence: LlamaContextSequence;
  readonly #draft: readonly Token[];
  readonly #isEog: (token: Token) => boolean;
  readonly stats: PredictionStats = { accepted: 0, rejected: 0 };
  readonly #output: Token[] = [];
  #position = 0;

  constructor(sequence: LlamaContextSequence, draft: readonly Token[], isEog: (token: Token) => boolean) {
    this.#sequence = sequence;
    this.#draft = draft;
    this.#isEog = isEog;
  }

  /**
   * Yields the greedy continuation after `input` (the end of the prompt, not yet evaluated),
   * several tokens per step. Stops at an end-of-generation token, or when the consumer stops.
   */
  async *tokens(input: readonly Token[], room: number): AsyncGenerator<Token> {
    let pending = input.slice(0, -1);
    let last = input[input.length - 1];
    for (;;) {
      const draft = this.#nextDraft(Math.max(0, room - this.#output.length - 1));
      const generate = { generateNext: { token: true, options: { temperature: 0 } } } as const;
      // Results are per input item; `last` sits after the rest of the prompt, if any is left.
      const offset = pending.length;
      const start = this.#sequence.nextTokenIndex + offset;
      const results = await this.#sequence.controlledEvaluate([...pending, ...[last, ...draft].map((token) => [token, generate] as const)] as never);
      pending = [];
      const sampled = results.slice(offset).map((r) => r?.next.token ?? undefined);
      let kept = 0;
      while (kept < draft.length && sampled[kept] === draft[kept]) kept++;
      this.stats.accepted += kept;
      this.stats.rejected += draft.length - kept;
      if (kept < draft.length) await this.#sequence.eraseContextTokenRanges([{ start: start + 1 + kept, end: start + 1 + draft.length }]);
      // Accepted draft tokens first (already in the KV cache), then the correction (not yet evaluated).
      for (let i = 0; i < kept; i++) {
        this.#output.push(draft[i]);
        yield draft[i];
      }
      const next = sampled[kept];
      if (next === undefined || next === null || this.#isEog(next)) return;
      this.#output.push(next);
      yield next;
      // On track: the sampled token is the prediction's next one too (it counts as accepted), and drafting resumes after it.
      const isOnTrack = kept === draft.length && this.#draft[this.#position + kept] === next;
      if (isOnTrack) this.stats.accepted++;
      this.#position = isOnTrack ? this.#position + kept + 1 : this.#realign();
      last = next;
    }
  }

  #nextDraft(room: number): Token[] {
    return this.#draft.slice(this.#position, this.#position + Math.min(draftLength, room));
  }

  /** After a miss, finds the last few output tokens in the prediction and drafts from there. */
  #realign(): number {
    const anchor = this.#output.slice(-anchorLength);
    if (anchor.length < anchorLength) return this.#draft.length;
    for (let i = this.#position; i + anchor.length <= this.#draft.length; i++) {
      let j = 0;
      while (j < anchor.length && this.#draft[i + j] === anchor[j]) j++;
      if (j === anchor.length) return i + anchor.length;
    }
    return this.#draft.length; // lost: no more drafts, plain decoding from here
  }
}

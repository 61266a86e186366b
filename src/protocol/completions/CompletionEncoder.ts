import type { FinishReason, Usage } from '../../core/types.js';
import { toProgressChunk, toTokenUsage, type ProgressCounts } from '../usage.js';

/** `stop` or `length`; a cancelled stream reports null rather than claim a natural stop. */
export function toCompletionFinishReason(reason: FinishReason): 'stop' | 'length' | null {
  return reason === 'cancelled' ? null : reason === 'length' ? 'length' : 'stop';
}

/** Renders `text_completion` chunks; the constant head is serialized once per stream. */
export class CompletionStreamEncoder {
  readonly #head: string;
  readonly #tail: string;
  readonly #meta: { id: string; model: string; createdS: number };

  constructor(id: string, model: string, createdS: number, includeUsage: boolean) {
    this.#meta = { id, model, createdS };
    this.#head = `{"id":${JSON.stringify(id)},"object":"text_completion","created":${createdS},"model":${JSON.stringify(model)},"choices":[{"index":0,"text":`;
    this.#tail = includeUsage ? ',"usage":null' : '';
  }

  text(text: string): string {
    return `${this.#head}${JSON.stringify(text)},"logprobs":null,"finish_reason":null}]${this.#tail}}`;
  }

  finish(reason: FinishReason): string {
    return `${this.#head}"","logprobs":null,"finish_reason":${JSON.stringify(toCompletionFinishReason(reason))}}]${this.#tail}}`;
  }

  /** A keep-alive chunk with no choices and Flint's `flint_progress` extension. */
  progress(progress: ProgressCounts): string {
    return toProgressChunk({ id: this.#meta.id, object: 'text_completion', created: this.#meta.createdS, model: this.#meta.model }, progress);
  }

  usage(usage: Usage): string {
    return JSON.stringify({ id: this.#meta.id, object: 'text_completion', created: this.#meta.createdS, model: this.#meta.model, choices: [], usage: toTokenUsage(usage) });
  }
}

/** The non-streaming `text_completion` object. */
export function toCompletion(id: string, model: string, createdS: number, text: string, reason: FinishReason, usage: Usage) {
  return {
    id,
    object: 'text_completion' as const,
    created: createdS,
    model,
    choices: [{ text, index: 0, logprobs: null, finish_reason: toCompletionFinishReason(reason) }],
    usage: toTokenUsage(usage),
  };
}

/** Branded id of one generation request, unique per gateway process. */
export type RequestId = string & { readonly __brand: 'RequestId' };
/** Branded id of a warm session (a WebSocket connection or a cache key). */
export type SessionId = string & { readonly __brand: 'SessionId' };

/** A chat message in transport-neutral form; every protocol maps its messages to this. */
export interface ChatMessage {
  /** `developer` is treated as `system` by chat templates. */
  readonly role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  readonly content: string;
  /** Tool calls made by an assistant turn. */
  readonly toolCalls?: readonly ToolCall[];
  /** For `tool` messages: the call this result answers. */
  readonly toolCallId?: string;
}

/** A function call made by the model. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** JSON text of the arguments. */
  readonly arguments: string;
}

/** What the model is asked to continue: a chat, a raw prompt, or a fill-in-the-middle pair. */
export type GenerateInput =
  | { readonly type: 'chat'; readonly messages: readonly ChatMessage[] }
  | { readonly type: 'text'; readonly prompt: string }
  | { readonly type: 'infill'; readonly prefix: string; readonly suffix: string };

/** Sampling settings; absent values take the engine's defaults. */
export interface SamplingOptions {
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly minP?: number;
  readonly seed?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  readonly repeatPenalty?: number;
}

/** The one internal request type every API maps to. */
export interface GenerateRequest {
  readonly id: RequestId;
  /** The model name the client asked for, already resolved to a served model. */
  readonly model: string;
  readonly input: GenerateInput;
  readonly sampling: SamplingOptions;
  /** Cap on generated tokens; undefined means up to the end of the context. */
  readonly maxTokens?: number;
  /** Stop strings; the matched text is not part of the output. */
  readonly stop: readonly string[];
  /** Affinity hint (`prompt_cache_key`, session id). */
  readonly cacheKey?: string;
}

/** Why a generation ended. `cancelled` is an outcome, never reported as `stop`. */
export type FinishReason = 'stop' | 'length' | 'cancelled';

/** Token counts from the engine's own tokenizer. */
export interface Usage {
  readonly promptTokens: number;
  /** Prompt tokens that were already in the KV cache and not evaluated again. */
  readonly cachedTokens: number;
  readonly completionTokens: number;
}

/** Engine-side timings of one generation, in milliseconds. */
export interface GenerationTimings {
  readonly queueMs: number;
  readonly prefillMs: number;
  readonly decodeMs: number;
}

/** The internal event stream every API maps back from. */
export type GenerationEvent =
  | { readonly type: 'start'; readonly promptTokens: number; readonly cachedTokens: number }
  | { readonly type: 'delta'; readonly text: string; readonly tokens: number }
  | { readonly type: 'done'; readonly finishReason: FinishReason; readonly usage: Usage; readonly timings: GenerationTimings };

/** Facts about the served model that protocols and `/v1/models` need. */
export interface ModelInfo {
  /** The id clients use. */
  readonly id: string;
  readonly aliases: readonly string[];
  readonly contextSize: number;
  readonly trainContextSize: number;
  readonly architecture: string;
  readonly chatWrapper: string;
  readonly hasInfill: boolean;
  readonly createdS: number;
}

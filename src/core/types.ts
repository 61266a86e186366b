/** The tenant of requests without a key (a server with no keys): one shared scope. */
export const anonymousTenant = 'anonymous';

/** The header in which a Flint front (a key in the member's `server.frontKeys`) names the tenant of a request. */
export const frontTenantHeader = 'x-flint-tenant';

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
  /**
   * Assistant turns: the thought the model wrote before its answer, exactly as generated
   * (re-rendered as the template's thought segment, so the prompt stays a cached prefix).
   */
  readonly reasoning?: string;
}

/** A function call made by the model. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** JSON text of the arguments. */
  readonly arguments: string;
}

/** A file (or part of one) given to code completion as context, e.g. from other open files. */
export interface InfillChunk {
  readonly filename: string;
  readonly text: string;
}

/** What the model is asked to continue: a chat, a raw prompt, or a fill-in-the-middle pair. */
export type GenerateInput =
  | { readonly type: 'chat'; readonly messages: readonly ChatMessage[] }
  | {
      readonly type: 'text';
      readonly prompt: string;
      /** The prompt as token ids (Completions' token-id prompts); `prompt` is then empty. */
      readonly tokens?: readonly number[];
      /** Special tokens written in `prompt` are special tokens (an already templated prompt: Ollama's `raw`). */
      readonly parseSpecial?: boolean;
    }
  | {
      readonly type: 'infill';
      readonly prefix: string;
      readonly suffix: string;
      /**
       * Set by llama.cpp's `/infill`: its repo-level layout (extra chunks first, then prefix,
       * suffix, and `prompt` after the prefix), truncated the way llama-server truncates it.
       */
      readonly repo?: { readonly extra: readonly InfillChunk[]; readonly prompt: string };
    };

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

/** Input format of a custom (free-text) tool: anything, or text following a grammar. */
export type CustomToolFormat = { readonly type: 'text' } | { readonly type: 'grammar'; readonly syntax: 'lark' | 'regex'; readonly definition: string };

/** A function the model may call. */
export interface ToolSpec {
  /** The name the model sees and calls; unique within a request. */
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments object. */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /** Set for custom tools: the arguments are `{"input": <free text>}`, constrained by `format` when forced. */
  readonly custom?: { readonly format: CustomToolFormat };
}

/** Whether and which tool the model must call. */
export type ToolChoice = 'none' | 'auto' | 'required' | { readonly name: string };

/** Constraint on the output text, enforced with a grammar. */
export type ResponseFormat = { readonly type: 'json_object' } | { readonly type: 'json_schema'; readonly schema: Readonly<Record<string, unknown>> };

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
  /**
   * Chats: text the answer already starts with (the final assistant message with vLLM's
   * `continue_final_message`; a turn migrated from a member that failed mid-answer). The prompt
   * ends with it and the output continues it; it is not part of the output.
   */
  readonly continuation?: string;
  /**
   * Whose prompt cache this request may use (config `cache.scope`): the tenant, or one shared
   * scope. A request never reuses, restores or is routed by tokens another scope left behind.
   */
  readonly cacheScope?: string;
  /** The slot that served the previous request of this turn (a verified `x-codex-turn-state`); preferred while it holds the prefix. */
  readonly slotHint?: SlotPlacement;
  /** Functions offered to the model (rendered through its chat template). */
  readonly tools?: readonly ToolSpec[];
  readonly toolChoice?: ToolChoice;
  /** False: at most one tool call per response. */
  readonly parallelToolCalls?: boolean;
  readonly responseFormat?: ResponseFormat;
  /** Predicted output (Chat `prediction`): a draft for speculative decoding; never changes the output. */
  readonly prediction?: string;
  /** Wire name of the prompt field, for errors about it (`messages`, `input`, `prompt`). */
  readonly inputParam?: string;
  /** Evaluate the prompt into the cache and generate nothing (WebSocket `generate: false`). */
  readonly isWarmupOnly?: boolean;
  /** Code completion (`/infill` `t_max_predict_ms`): after this long decoding, stop at the next newline once one was written. */
  readonly maxPredictMs?: number;
}

/** Why a generation ended. `cancelled` is an outcome, never reported as `stop`. */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'cancelled';

/** Token counts from the engine's own tokenizer. */
export interface Usage {
  readonly promptTokens: number;
  /** Prompt tokens that were already in the KV cache and not evaluated again. */
  readonly cachedTokens: number;
  readonly completionTokens: number;
  /** Of the completion tokens, those inside the thought segment. */
  readonly reasoningTokens?: number;
  /** Draft tokens from a prediction that decoding confirmed. */
  readonly acceptedPredictionTokens?: number;
  /** Draft tokens from a prediction that decoding rejected. */
  readonly rejectedPredictionTokens?: number;
}

/** How a chat prompt was made: the slot's previous prompt reused as it was, only new messages rendered, or all of it (and why). */
export interface PromptRender {
  readonly mode: 'reused' | 'incremental' | 'full';
  readonly reason?: 'cold' | 'diverged' | 'template';
  readonly ms: number;
}

/** Engine-side timings of one generation, in milliseconds. */
export interface GenerationTimings {
  readonly queueMs: number;
  readonly prefillMs: number;
  readonly decodeMs: number;
}

/** Where a generation ran: worker index and slot within it. */
export interface SlotPlacement {
  readonly worker: number;
  readonly slot: number;
}

/** The internal event stream every API maps back from. */
export type GenerationEvent =
  | { readonly type: 'start'; readonly promptTokens: number; readonly cachedTokens: number; readonly placement: SlotPlacement }
  | { readonly type: 'delta'; readonly text: string; readonly tokens: number }
  /** Text of the model's thought segment (reasoning), streamed before the answer. */
  /** `raw` is set once, when the thought ends: its exact text as it stands in the context. */
  | { readonly type: 'reasoning'; readonly text: string; readonly tokens: number; readonly raw?: string }
  /** Prefill or queue progress of a request that has not produced output yet. */
  | { readonly type: 'progress'; readonly evaluatedTokens: number; readonly totalTokens: number; readonly queuePosition: number }
  /** One complete function call; `arguments` is JSON text. */
  | { readonly type: 'tool_call'; readonly call: ToolCall }
  | {
      readonly type: 'done';
      readonly finishReason: FinishReason;
      readonly usage: Usage;
      readonly timings: GenerationTimings;
      /** The thought segment exactly as it stands in the context (markers included), to send back sealed. */
      readonly reasoning?: string;
      /** Code completion: the prompt was cut to fit the batch and context (llama-server's `truncated`). */
      readonly truncated?: boolean;
    };

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
  readonly hasToolCalls?: boolean;
  readonly hasThinking?: boolean;
  /** The model file: its size and when it was written (Ollama's `/api/tags`). */
  readonly file?: { readonly sizeBytes: number; readonly modifiedAt: string };
  /** The longest text one token stands for: prompts longer than contextSize × this cannot fit, untokenized. */
  readonly maxTokenChars: number;
  readonly createdS: number;
}

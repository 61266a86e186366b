import { createHash } from 'node:crypto';
import type { FinishReason, GenerationTimings, ModelInfo, ToolCall, Usage } from '../../core/types.js';

/** The Ollama API version these routes follow (clients check it before using newer fields). */
export const ollamaApiVersion = '0.12.6';

/** Ollama's `done_reason`. */
function toDoneReason(reason: FinishReason): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}

const nanoseconds = (ms: number) => Math.round(ms * 1e6);

/** The closing fields of every Ollama generation: reason, counts and durations in nanoseconds. */
export function toOllamaDone(done: { finishReason: FinishReason; usage: Usage; timings: GenerationTimings }, totalMs: number) {
  return {
    done: true,
    done_reason: toDoneReason(done.finishReason),
    total_duration: nanoseconds(totalMs),
    load_duration: 0,
    prompt_eval_count: done.usage.promptTokens,
    prompt_eval_duration: nanoseconds(done.timings.prefillMs),
    eval_count: done.usage.completionTokens,
    eval_duration: nanoseconds(done.timings.decodeMs),
  };
}

/** A tool call as Ollama writes it: no id, arguments as an object. */
export function toOllamaToolCall(call: ToolCall): { function: { name: string; arguments: unknown } } {
  let args: unknown;
  try {
    args = JSON.parse(call.arguments);
  } catch {
    args = {};
  }
  return { function: { name: call.name, arguments: args } };
}

/** `/api/chat` lines: text, thought and tool calls as message chunks. */
export function toChatLine(model: string, message: { content: string; thinking?: string; tool_calls?: unknown[] }): string {
  return `${JSON.stringify({ model, created_at: new Date().toISOString(), message: { role: 'assistant', ...message }, done: false })}\n`;
}

/** `/api/generate` lines: `response` text, or `thinking`. */
export function toGenerateLine(model: string, text: { response: string; thinking?: string }): string {
  return `${JSON.stringify({ model, created_at: new Date().toISOString(), ...text, done: false })}\n`;
}

/** The identity Ollama's lists show for the served model: name with its tag, size, digest, details. */
export function toOllamaModel(model: ModelInfo) {
  const name = `${model.id}:latest`;
  const file = model.file;
  const digest = createHash('sha256').update(`${model.id}\u0000${file?.sizeBytes ?? 0}\u0000${file?.modifiedAt ?? ''}`).digest('hex');
  return {
    name,
    model: name,
    modified_at: file?.modifiedAt ?? new Date(model.createdS * 1000).toISOString(),
    size: file?.sizeBytes ?? 0,
    digest,
    details: { parent_model: '', format: 'gguf', family: model.architecture, families: [model.architecture], parameter_size: '', quantization_level: '' },
  };
}

/** `POST /api/show`: details, `model_info` with the context length, and what the model can do. */
export function toOllamaShow(model: ModelInfo) {
  const capabilities = ['completion'];
  if (model.hasToolCalls) capabilities.push('tools');
  if (model.hasInfill) capabilities.push('insert');
  if (model.hasThinking) capabilities.push('thinking');
  const { details, modified_at } = toOllamaModel(model);
  return {
    modelfile: '',
    parameters: '',
    template: '',
    details,
    model_info: {
      'general.architecture': model.architecture,
      [`${model.architecture}.context_length`]: model.contextSize,
    },
    capabilities,
    modified_at,
  };
}

/** `GET /api/ps`: the served model, always loaded. */
export function toOllamaRunning(model: ModelInfo) {
  return { ...toOllamaModel(model), expires_at: '2318-08-23T00:00:00Z', size_vram: 0, context_length: model.contextSize };
}

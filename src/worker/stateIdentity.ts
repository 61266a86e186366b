import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Llama, LlamaContext } from 'node-llama-cpp';

/** Bytes of the model file hashed for its identity: the GGUF header (metadata, tensor table) and the first weights. */
const identityBytes = 4 * 1024 * 1024;

/**
 * The model file's identity for saved KV states: SHA-256 of its first 4 MiB plus its size. A
 * state from another model can crash llama.cpp when loaded (node-llama-cpp says so), so states
 * on disk carry this and only states of the exact same file are ever loaded. Read once per worker.
 */
export async function loadModelIdentity(modelPath: string): Promise<string> {
  const file = await open(modelPath, 'r');
  try {
    const { size } = await file.stat();
    const buffer = Buffer.alloc(Math.min(identityBytes, size));
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    return createHash('sha256').update(buffer.subarray(0, bytesRead)).update(`\0${size}`).digest('hex');
  } finally {
    await file.close();
  }
}

/**
 * What, besides the model, decides whether llama.cpp can load a sequence state file into this
 * context (checked against llama.cpp's `state_seq_load_file` and `llama_kv_cache::state_read`):
 * the build (the file format), the number of sequences (node-llama-cpp keeps one KV stream per
 * sequence and llama.cpp refuses a state with another stream count), the K and V cache types,
 * and flash attention (it decides whether V is stored transposed; this is the setting, and where
 * `auto` resolves differently llama.cpp refuses the state cleanly, which the cache counts as a
 * format mismatch). The context size is not part of it: a state loads into a larger or smaller
 * context as long as its tokens fit, which the cache checks per entry.
 */
export function toStateFormat(llama: Llama, context: LlamaContext): string {
  return JSON.stringify({
    llamaCpp: llama.llamaCppRelease.release,
    sequences: context.totalSequences,
    kvCacheKeyType: context.kvCacheKeyType,
    kvCacheValueType: context.kvCacheValueType,
    flashAttention: context.flashAttention,
  });
}

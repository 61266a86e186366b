import type { LlamaContext } from 'node-llama-cpp';

/**
 * On a small CPU, prompt evaluation (large batches) gets faster with every core, while single
 * token decoding does not, and with more compute threads than free cores it can get many times
 * slower, because llama.cpp's threads spin while the event loop needs a core. So: use
 * `batchThreads` for batches of at least `minBatchTokens` tokens and `decodeThreads` otherwise.
 *
 * node-llama-cpp 3.22 sets a context's thread count before every batch but picks one number for
 * all batches; this wraps its internal native context (`_ctx`) to choose per batch. The wrapper
 * only reads the size passed to `initBatch` and adjusts `setThreads`; everything else passes
 * through unchanged. Returns false (and changes nothing) if the internals are not as expected.
 */
export function splitThreads(context: LlamaContext, options: { decodeThreads: number; batchThreads: number; minBatchTokens: number }): boolean {
  const holder = context as unknown as { _ctx?: Record<string, unknown> };
  const native = holder._ctx;
  if (!native || typeof native.initBatch !== 'function' || typeof native.setThreads !== 'function') return false;
  if (options.batchThreads === options.decodeThreads) return true;
  let batchTokens = 0;
  holder._ctx = new Proxy(native, {
    get(target, property) {
      if (property === 'initBatch') {
        return (size: number) => {
          batchTokens = size;
          return (target.initBatch as (size: number) => unknown).call(target, size);
        };
      }
      if (property === 'setThreads') {
        return () => (target.setThreads as (n: number) => unknown).call(target, batchTokens >= options.minBatchTokens ? options.batchThreads : options.decodeThreads);
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return true;
}

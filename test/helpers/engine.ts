import { after, before } from 'node:test';
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';
import type { WorkerSettings } from '../../src/ipc/messages.js';

/** Worker settings for an Engine in a test: one thread, one slot, small batches, no saved prefixes. */
export function testEngineSettings(modelPath: string, overrides: Partial<WorkerSettings> = {}): WorkerSettings {
  return {
    modelPath,
    contextSize: 512,
    slots: 1,
    threads: 1,
    batchThreads: 1,
    batchThreadsMinTokens: 32,
    batchSize: 64,
    gpu: 'off',
    defaultMaxTokens: 0,
    maxOutputTokens: 0,
    savedPrefixBytes: 0,
    minSavedPrefixTokens: 64,
    diskCacheDir: '',
    diskCacheBytes: 0,
    diskCacheMaxEntries: 1,
    workers: 1,
    saveIdleSlotsAfterMs: 0,
    streamCoalesceMs: 2,
    ...overrides,
  };
}

/**
 * Loads a model with node-llama-cpp (CPU) before the tests of the calling file or suite and
 * disposes of it after them; `model()` is the loaded model.
 */
export function useTestModel(modelPath: () => Promise<string>): { model: () => LlamaModel } {
  let llama: Llama | undefined;
  let model: LlamaModel | undefined;
  before(async () => {
    llama = await getLlama({ gpu: false, build: 'never', progressLogs: false, maxThreads: 0 });
    model = await llama.loadModel({ modelPath: await modelPath() });
  });
  after(async () => {
    await model?.dispose();
    await llama?.dispose();
  });
  return {
    model: () => {
      if (!model) throw new Error('the test model is not loaded yet');
      return model;
    },
  };
}

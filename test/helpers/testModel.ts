import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSyntheticModel } from '../../src/synth/ensureSyntheticModel.js';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Git-ignored folder where tests keep the models they generate (once per checkout). */
export const testModelsDir = path.join(repoRoot, 'models');

/** Path of the tiny synthetic model, generated on first use. */
export function tinyModelPath(): Promise<string> {
  return ensureSyntheticModel({ preset: 'tiny', dir: testModelsDir });
}

/** Path of the tiny synthetic thinking model (`tiny-think`: Qwen3-Thinking-style template and tokens), generated on first use. */
export function thinkModelPath(): Promise<string> {
  return ensureSyntheticModel({ preset: 'tiny-think', dir: testModelsDir });
}

/** Path of the tiny synthetic model that ends its answers (`tiny-chat`), generated on first use. */
export function chatModelPath(): Promise<string> {
  return ensureSyntheticModel({ preset: 'tiny-chat', dir: testModelsDir });
}

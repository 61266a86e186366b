import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/loadConfig.js';
import { tinyModelPath } from './testModel.js';

/** A gateway on a free loopback port with the tiny model, plus an official client for it. */
export interface TestServer extends AsyncDisposable {
  readonly app: App;
  readonly url: string;
  readonly client: OpenAI;
  close(): Promise<void>;
}

/** Config overrides in FLINT_* form, e.g. `{ FLINT_SLOTS: '1' }`. */
export type EnvOverrides = Record<string, string>;

/**
 * Starts the real server (real worker process, real llama.cpp) for one test file. `yaml` is
 * an optional config file for settings that have no FLINT_* variable.
 */
export async function startServer(env: EnvOverrides = {}, yaml?: string): Promise<TestServer> {
  const modelPath = await tinyModelPath();
  let configFile: string | undefined;
  if (yaml !== undefined) {
    configFile = path.join(mkdtempSync(path.join(tmpdir(), 'flint-test-')), 'flint.yaml');
    writeFileSync(configFile, yaml);
  }
  const { config } = loadConfig({
    flags: configFile ? { config: configFile } : {},
    env: {
      FLINT_MODEL: modelPath,
      FLINT_PORT: '0',
      FLINT_HOST: '127.0.0.1',
      FLINT_THREADS: '1',
      // Test files run two at a time on two cores: one compute thread each, for prompts too.
      FLINT_BATCH_THREADS: '1',
      FLINT_WORKERS: '1',
      FLINT_SLOTS: '2',
      FLINT_CONTEXT_SIZE: '1024',
      FLINT_LOG_LEVEL: process.env.FLINT_TEST_LOG_LEVEL ?? 'silent',
      FLINT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'flint-data-')),
      ...env,
    },
  });
  const app = await createApp(config);
  const url = await app.listen();
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: env.FLINT_API_KEYS?.split(',')[0] ?? 'unused', maxRetries: 0, timeout: 60_000 });
  const close = () => app.close();
  return { app, url, client, close, [Symbol.asyncDispose]: close };
}

/**
 * Starts Flint in this process through its composition root (`createApp`), on a free loopback
 * port, with exactly the settings a scenario needs. The model runs in Flint's own worker
 * process, as in production.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/loadConfig.js';
import { ConfigSchema } from '../../src/config/schema.js';
import type { GpuOption } from './options.js';
import { batchThreadsMinTokens } from './rawEngine.js';

export interface FlintSettings {
  readonly modelPath: string;
  readonly contextSize: number;
  readonly slots: number;
  readonly threads: number;
  readonly batchThreads: number;
  readonly gpu: GpuOption;
  readonly logLevel: string;
  /** Host memory for saved prefixes; undefined keeps Flint's default. */
  readonly savedPrefixBytes?: number;
  /** Extra config sections (e.g. `websocket` limits), applied only where Flint's schema has that section. */
  readonly sections?: Readonly<Record<string, Record<string, unknown>>>;
  /** Flint's data folder, kept after close (a restart on the same data); undefined: a fresh one, removed on close. */
  readonly dataDir?: string;
  /** `engine.backend`, and the binary for llama-server; undefined keeps Flint's default. */
  readonly backend?: 'node-llama-cpp' | 'llama-server';
  readonly llamaServer?: string;
}

export interface FlintServer extends AsyncDisposable {
  readonly app: App;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The settings go through a config file (JSON is YAML) and `loadConfig`, so they are validated
 * like a user's; the environment is not read, so stray FLINT_* variables cannot skew a run.
 */
export async function startFlint(settings: FlintSettings): Promise<FlintServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-bench-'));
  const file = path.join(dir, 'flint.yaml');
  const engine: Record<string, unknown> = {
    workers: 1,
    slots: settings.slots,
    threads: settings.threads,
    batchThreads: settings.batchThreads,
    batchThreadsMinTokens: batchThreadsMinTokens,
    gpu: settings.gpu,
    savedPrefixBytes: settings.savedPrefixBytes,
    backend: settings.backend,
    llamaServer: settings.backend === 'llama-server' ? { path: settings.llamaServer } : undefined,
  };
  // Only keys this Flint's schema knows (it rejects unknown ones), so a renamed or dropped setting does not stop the run.
  const engineKeys = ConfigSchema.properties.engine.properties;
  for (const key of Object.keys(engine)) if (engine[key] === undefined || !Object.hasOwn(engineKeys, key)) delete engine[key];
  const sections = Object.entries(settings.sections ?? {}).filter(([name]) => Object.hasOwn(ConfigSchema.properties, name));
  const base: Record<string, unknown> = {
    server: { host: '127.0.0.1', port: 0 },
    model: { path: settings.modelPath, contextSize: settings.contextSize, acceptAnyModelName: true },
    engine,
    logging: { level: settings.logLevel },
    dataDir: settings.dataDir ?? path.join(dir, 'data'),
  };
  // A scenario's section is merged into the bench's own (its `server` keys join host and port).
  for (const [name, values] of sections) base[name] = { ...(base[name] as Record<string, unknown> | undefined), ...values };
  writeFileSync(file, JSON.stringify(base));
  const { config } = loadConfig({ flags: { config: file }, env: {} });
  let app: App;
  try {
    app = await createApp(config);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let url: string;
  try {
    url = await app.listen();
  } catch (err) {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= app.close().finally(() => rmSync(dir, { recursive: true, force: true })));
  return { app, url, close, [Symbol.asyncDispose]: close };
}

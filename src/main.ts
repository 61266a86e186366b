import path from 'node:path';
import { createApp, packageRoot } from './app.js';
import { loadConfig, type ConfigFlags } from './config/loadConfig.js';
import { FlintError } from './errors/FlintError.js';

/**
 * `flint serve`: load config, build the app, listen, and close gracefully on SIGINT/SIGTERM.
 * One of the two places that call process.exit.
 */
export async function serve(flags: ConfigFlags): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig({ flags, defaultFile: path.join(packageRoot, 'config', 'flint.yaml') });
  } catch (err) {
    process.stderr.write(`flint: ${(err as Error).message}\n`);
    process.exit(2);
  }
  let app;
  try {
    app = await createApp(loaded.config);
  } catch (err) {
    const message = err instanceof FlintError ? err.message : (err as Error)?.stack ?? String(err);
    process.stderr.write(`flint: cannot start: ${message}\n`);
    process.exit(err instanceof FlintError && err.code === 'FLINT_ERR_CONFIG' ? 2 : 1);
  }
  if (app.model.isDemo) {
    process.stderr.write(
      [
        '',
        '  ============================================================================',
        '  Flint is serving a generated random-weights DEMO model. Its output is gibberish.',
        "  To serve a real model:  flint pull qwen2.5-coder-0.5b-instruct",
        '                          flint serve --model qwen2.5-coder-0.5b-instruct',
        '  or set FLINT_MODEL=/path/to/model.gguf (see flint models).',
        '  ============================================================================',
        '',
        '',
      ].join('\n'),
    );
  }
  const url = await app.listen();
  app.fastify.log.info({ url, model: app.scheduler.model?.id, configFile: loaded.file }, 'listening');
  process.stdout.write(`Flint listening on ${url} (model: ${app.scheduler.model?.id})\n`);

  let isStopping = false;
  const stop = (signal: string) => {
    if (isStopping) {
      app.fastify.log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    isStopping = true;
    app.fastify.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), loaded.config.server.shutdownGraceMs + 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.fastify.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a second signal must reach stop(), which then exits at once.
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

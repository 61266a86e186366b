import path from 'node:path';
import { createApp, packageRoot, resolveThreads } from './app.js';
import { loadConfig, type ConfigFlags } from './config/loadConfig.js';
import { FlintError } from './errors/FlintError.js';
import { resolveLogFormat } from './logging/logger.js';
import { createPullOptions } from './modelfiles/createPullOptions.js';

/** `flint serve` options beyond the config flags. */
export interface ServeOptions {
  /** Download a catalog model or `hf:` URI that is not in `model.dir` yet. */
  readonly pull?: boolean;
}

/**
 * `flint serve`: load config, build the app, listen, and close gracefully on SIGINT/SIGTERM.
 * One of the two places that call process.exit.
 */
export async function serve(flags: ConfigFlags, options: ServeOptions = {}): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig({ flags, defaultFile: path.join(packageRoot, 'config', 'flint.yaml') });
  } catch (err) {
    process.stderr.write(`flint: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const config = loaded.config;
  const logFormat = resolveLogFormat(config.logging.format, process.stdout.isTTY === true);
  // Ctrl-C while pulling stops the download (kept for resuming) instead of waiting for it.
  const pulling = new AbortController();
  const onInterrupt = () => (pulling.signal.aborted ? process.exit(130) : pulling.abort(new Error('interrupted')));
  // `on`, not `once`: signal-exit (loaded by a dependency) re-raises a signal that no other listener is left for.
  process.on('SIGINT', onInterrupt);
  let app;
  try {
    app = await createApp(config, {
      logFormat,
      pull: options.pull ? createPullOptions(config.download, process.stderr, pulling.signal) : undefined,
    });
  } catch (err) {
    if (pulling.signal.aborted) {
      process.stderr.write('flint: interrupted; the partial download is kept: run the same command again to resume\n');
      process.exit(130);
    }
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
  process.removeListener('SIGINT', onInterrupt);
  const url = await app.listen();
  const model = app.scheduler.model;
  const { threads, batchThreads } = resolveThreads(config);
  app.fastify.log.info(
    {
      url,
      model: model?.id,
      modelFile: path.relative(process.cwd(), app.model.path) || app.model.path,
      architecture: model?.architecture,
      contextSize: model?.contextSize,
      trainContextSize: model?.trainContextSize,
      workers: config.engine.workers,
      backend: config.engine.workers > 0 ? config.engine.backend : undefined,
      slots: config.engine.slots,
      threads,
      batchThreads,
      gpu: config.engine.gpu,
      metricsUrl: config.metrics.port > 0 ? `http://${config.server.host}:${config.metrics.port}/metrics` : `${url}/metrics`,
      metricsToken: config.metrics.token !== '',
      configFile: loaded.file,
    },
    'listening',
  );
  // Scripts read this line; the human log format prints its own summary that starts the same way.
  if (logFormat === 'json' || !['info', 'debug', 'trace'].includes(config.logging.level)) process.stdout.write(`Flint listening on ${url} (model: ${model?.id})\n`);

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

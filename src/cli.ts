/** `flint` command dispatch; argument parsing only, the work lives in the modules it calls. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from './config/loadConfig.js';
import { catalogFile, loadCatalog } from './modelfiles/loadCatalog.js';
import { createPullOptions } from './modelfiles/createPullOptions.js';
import { pullModel } from './modelfiles/pullModel.js';
import { formatModelList, listLocalModels } from './modelfiles/listLocalModels.js';
import { synthesizeModel } from './synth/synthesizeModel.js';
import { packageRoot } from './utils/packageRoot.js';
import { isPresetName } from './synth/presets.js';

const usage = `Usage: flint <command> [options]

Commands:
  serve [--model M] [--pull] [--host H] [--port P] [--config F] [--log-format pretty|json]
                                                         start the gateway; --pull downloads M first if needed
  pull M [--config F]                                    download a catalog model, hf: URI or URL into models/
  models [--config F]                                    local models (read from their GGUF headers) and the catalog
  synth [--preset tiny|small|qwen2.5-0.5b] --out F [--seed N] [--split N]
                                                         write a synthetic GGUF (random weights, real tokenizer)
  help                                                   this text
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: {
          model: { type: 'string' },
          host: { type: 'string' },
          port: { type: 'string' },
          config: { type: 'string' },
          'log-format': { type: 'string' },
          pull: { type: 'boolean', default: false },
        },
        strict: true,
      });
      const { 'log-format': logFormat, pull, ...flags } = values;
      // The server is imported only here, so pull, models and synth start quickly.
      const { serve } = await import('./main.js');
      await serve({ ...flags, logFormat }, { pull });
      return;
    }
    case 'synth': {
      const { values } = parseArgs({
        args: rest,
        options: { preset: { type: 'string', default: 'tiny' }, out: { type: 'string' }, seed: { type: 'string' }, split: { type: 'string' } },
        strict: true,
      });
      if (!values.out) fail('synth needs --out FILE');
      if (!isPresetName(values.preset)) fail(`unknown preset '${values.preset}'; choose tiny, tiny-think, tiny-chat, small or qwen2.5-0.5b`);
      const seed = values.seed === undefined ? undefined : Number(values.seed);
      if (seed !== undefined && !Number.isInteger(seed)) fail('--seed must be an integer');
      const splitParts = values.split === undefined ? undefined : Number(values.split);
      if (splitParts !== undefined && !(Number.isInteger(splitParts) && splitParts >= 1)) fail('--split must be a positive integer');
      const started = performance.now();
      const result = await synthesizeModel({ preset: values.preset, outPath: path.resolve(values.out), seed, splitParts });
      process.stdout.write(
        `wrote ${result.parts.length > 1 ? `${result.parts.length} parts, ${result.path} first` : result.path} (${(result.bytes / 1e6).toFixed(1)} MB, vocabulary ${result.vocabSize}, ${result.trainedVocabSize} trained) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
      return;
    }
    case 'pull': {
      const { values, positionals } = parseArgs({ args: rest, options: { config: { type: 'string' } }, allowPositionals: true, strict: true });
      const name = positionals[0];
      if (!name || positionals.length > 1) fail('pull needs one model: a catalog name (see flint models), an hf: URI or a URL');
      const { config } = loadConfig({ flags: { config: values.config }, defaultFile: path.join(packageRoot, 'config', 'flint.yaml') });
      const interrupt = new AbortController();
      // `on`, not `once`: signal-exit (loaded by a dependency) re-raises a signal that no other listener is left for.
      process.on('SIGINT', () => (interrupt.signal.aborted ? process.exit(130) : interrupt.abort(new Error('interrupted'))));
      const modelsDir = path.resolve(config.model.dir);
      try {
        const pulled = await pullModel(name, { ...createPullOptions(config.download, process.stderr, interrupt.signal), modelsDir, catalog: loadCatalog(catalogFile(config.model.catalog)) });
        const how = !pulled.wasDownloaded ? 'already downloaded' : pulled.verifiedBy === 'none' ? 'downloaded (no SHA-256 stated to check against)' : `downloaded, SHA-256 matches ${pulled.verifiedBy === 'catalog' ? 'the catalog' : 'the hub'}`;
        process.stdout.write(`model ready: ${displayPath(pulled.path)} (${how})\nserve it with: flint serve --model ${name}\n`);
      } catch (err) {
        if (!interrupt.signal.aborted) throw err;
        process.stderr.write(`flint: interrupted; the partial download is kept in ${displayPath(path.join(modelsDir, '.partial'))}: run the same command again to resume\n`);
        process.exit(130);
      }
      return;
    }
    case 'models': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } }, strict: true });
      const { config } = loadConfig({ flags: { config: values.config }, defaultFile: path.join(packageRoot, 'config', 'flint.yaml') });
      const modelsDir = path.resolve(config.model.dir);
      process.stdout.write(formatModelList(modelsDir, await listLocalModels(modelsDir), loadCatalog(catalogFile(config.model.catalog))));
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return;
    default:
      fail(`unknown command '${command}'\n\n${usage}`);
  }
}

/** A path relative to the working directory when it is below it, else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') ? relative : file;
}

function fail(message: string): never {
  process.stderr.write(`flint: ${message}\n`);
  process.exit(2);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`flint: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});

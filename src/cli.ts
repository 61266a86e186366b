/** `flint` command dispatch; argument parsing only, the work lives in the modules it calls. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from './app.js';
import { serve } from './main.js';
import { loadCatalog } from './modelfiles/resolveModelFile.js';
import { pullModel } from './modelfiles/pullModel.js';
import { listLocalModels } from './modelfiles/listLocalModels.js';
import { synthesizeModel } from './synth/synthesizeModel.js';
import { isPresetName } from './synth/presets.js';

const usage = `Usage: flint <command> [options]

Commands:
  serve [--model M] [--host H] [--port P] [--config F]   start the gateway
  synth [--preset tiny|small|qwen2.5-0.5b] --out F [--seed N]
                                                         write a synthetic GGUF (random weights, real tokenizer)
  pull M                                                 download a catalog model or hf: URI into models/
  models                                                 list local models and the catalog
  help                                                   this text
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: { model: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' } },
        strict: true,
      });
      await serve(values);
      return;
    }
    case 'synth': {
      const { values } = parseArgs({
        args: rest,
        options: { preset: { type: 'string', default: 'tiny' }, out: { type: 'string' }, seed: { type: 'string' } },
        strict: true,
      });
      if (!values.out) fail('synth needs --out FILE');
      if (!isPresetName(values.preset)) fail(`unknown preset '${values.preset}'; choose tiny, tiny-think, tiny-chat, small or qwen2.5-0.5b`);
      const seed = values.seed === undefined ? undefined : Number(values.seed);
      if (seed !== undefined && !Number.isInteger(seed)) fail('--seed must be an integer');
      const started = performance.now();
      const result = await synthesizeModel({ preset: values.preset, outPath: path.resolve(values.out), seed });
      process.stdout.write(
        `wrote ${result.path} (${(result.bytes / 1e6).toFixed(1)} MB, vocabulary ${result.vocabSize}, ${result.trainedVocabSize} trained) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
      return;
    }
    case 'pull': {
      const name = rest[0];
      if (!name) fail('pull needs a model name or hf: URI (see flint models)');
      const file = await pullModel(name, { modelsDir: path.resolve('models'), catalog: loadCatalog(path.join(packageRoot, 'config', 'catalog.yaml')) });
      process.stdout.write(`model ready: ${file}\nserve it with: flint serve --model ${name}\n`);
      return;
    }
    case 'models': {
      process.stdout.write(listLocalModels(path.resolve('models'), loadCatalog(path.join(packageRoot, 'config', 'catalog.yaml'))));
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

function fail(message: string): never {
  process.stderr.write(`flint: ${message}\n`);
  process.exit(2);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`flint: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});

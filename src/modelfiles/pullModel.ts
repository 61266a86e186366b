import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CatalogEntry } from './resolveModelFile.js';

/** Where a model comes from: a download URL, the local file name, and its sha256 if known. */
export interface ModelSource {
  readonly url: string;
  readonly file: string;
  readonly sha256?: string;
}

/** `hf:owner/repo/path/file.gguf[#revision]` or a catalog name → download URL and file name. */
export function toModelSource(spec: string, catalog: readonly CatalogEntry[]): ModelSource {
  const entry = catalog.find((e) => e.name === spec || e.uri === spec);
  const uri = entry?.uri ?? spec;
  const match = /^hf:([^/]+)\/([^/]+)\/(.+?)(?:#(.+))?$/.exec(uri);
  if (!match) throw new Error(`'${spec}' is neither a catalog name nor an hf:owner/repo/file.gguf URI`);
  const [, owner, repo, file, revision = 'main'] = match;
  // Every part stays inside its repository: no '..', '.', empty or encoded segments that a URL would resolve elsewhere.
  const isSafe = (part: string) => part.length > 0 && part !== '.' && part !== '..' && !/[%\\?#]/.test(part);
  if (![owner, repo, ...revision.split('/'), ...file.split('/')].every(isSafe)) throw new Error(`'${spec}': hf: URIs may not contain '.', '..', empty or escaped path segments`);
  return {
    url: `https://huggingface.co/${owner}/${repo}/resolve/${revision}/${file}`,
    file: entry?.file ?? path.basename(file),
    sha256: entry?.sha256,
  };
}

/**
 * Downloads a model into `modelsDir` with a progress bar. A partial `.part` file is resumed
 * with an HTTP Range request; a known sha256 is verified before the file is put in place.
 */
export async function pullModel(spec: string, options: { modelsDir: string; catalog: readonly CatalogEntry[] }): Promise<string> {
  const source = toModelSource(spec, options.catalog);
  mkdirSync(options.modelsDir, { recursive: true });
  const target = path.join(options.modelsDir, source.file);
  if (existsSync(target)) return target;
  const partial = `${target}.part`;
  const have = existsSync(partial) ? statSync(partial).size : 0;
  const response = await fetch(source.url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, redirect: 'follow' });
  if (!response.ok || !response.body) throw new Error(`download failed: HTTP ${response.status} for ${source.url}`);
  const isResumed = response.status === 206;
  const start = isResumed ? have : 0;
  const total = start + Number(response.headers.get('content-length') ?? 0);
  let done = start;
  let lastDraw = 0;
  const progress = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      done += chunk.byteLength;
      const now = Date.now();
      if (now - lastDraw > 200 || done === total) {
        lastDraw = now;
        drawProgress(source.file, done, total);
      }
      controller.enqueue(chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body.pipeThrough(progress) as import('node:stream/web').ReadableStream), createWriteStream(partial, { flags: isResumed ? 'a' : 'w' }));
  process.stderr.write('\n');
  if (source.sha256) {
    const actual = await sha256File(partial);
    if (actual !== source.sha256.toLowerCase()) throw new Error(`checksum mismatch for ${source.file}: expected ${source.sha256}, got ${actual}; delete ${partial} and retry`);
  }
  renameSync(partial, target);
  return target;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function drawProgress(name: string, done: number, total: number): void {
  const width = 30;
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(ratio * width);
  const mb = (n: number) => (n / 1e6).toFixed(1);
  process.stderr.write(`\r${name} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(ratio * 100).toFixed(1)}% ${mb(done)}/${mb(total)} MB`);
}

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { FlintError } from '../errors/FlintError.js';
import type { DownloadProgress } from './DownloadProgress.js';
import type { CatalogEntry } from './loadCatalog.js';
import { readGgufFacts } from './readGgufFacts.js';
import { toModelSource, type ModelSource, type ModelSourceFile } from './toModelSource.js';

/** Where `pullModel` saves, where it downloads from, and how it reports. */
export interface PullOptions {
  readonly modelsDir: string;
  readonly catalog: readonly CatalogEntry[];
  /** Hugging Face endpoint or mirror, ending in '/'. */
  readonly hfEndpoint: string;
  /** Bearer token for gated or private repositories; absent: node-llama-cpp's own lookup (its token file). */
  readonly hfToken?: string;
  /** A progress display for one download. */
  readonly createProgress: (label: string) => DownloadProgress;
  /** One line of status (resuming, verifying, ...). */
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** A model ready under `modelsDir`. */
export interface PulledModel {
  /** The file to load (the first part of a split model). */
  readonly path: string;
  readonly files: readonly string[];
  readonly wasDownloaded: boolean;
  /** Which stated SHA-256 the files were checked against. */
  readonly verifiedBy: 'catalog' | 'hub' | 'none';
}

/** Folder under `modelsDir` where downloads are written and checked before they are moved into place. */
export const stagingDirName = '.partial';

/**
 * Downloads a catalog model, `hf:` URI or URL into `modelsDir` with node-llama-cpp's downloader
 * (parallel ranges, split files, resume from the partial file of an interrupted run). The files
 * land in `modelsDir/.partial/` first and move into `modelsDir` only after each is checked: a
 * readable GGUF header, the stated size, and the SHA-256 the catalog (else the hub's
 * `X-Linked-Etag`) states. A file that fails is deleted; an interrupted download is kept for
 * the next run to resume.
 */
export async function pullModel(spec: string, options: PullOptions): Promise<PulledModel> {
  // A model already here needs neither the network nor the lock (another pull may be running).
  const present = await alreadyPresent(toModelSource(spec, options.catalog), options.modelsDir);
  if (present) return present;
  const stagingDir = path.join(options.modelsDir, stagingDirName);
  await mkdir(stagingDir, { recursive: true });
  const release = await lockStaging(stagingDir, spec, options.modelsDir);
  try {
    return await pullUnlocked(spec, options, stagingDir);
  } finally {
    await release();
  }
}

/** Name of the lock file in the staging folder: one pull at a time writes into a models folder. */
const lockFileName = '.pull.lock';

/**
 * Takes the models folder's pull lock (a file holding the puller's pid, created exclusively):
 * two pulls into one folder would write the same partial files. A lock whose process is gone
 * (killed, the machine restarted) is taken over. Returns its release.
 */
async function lockStaging(stagingDir: string, spec: string, modelsDir: string): Promise<() => Promise<void>> {
  const file = path.join(stagingDir, lockFileName);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
        throw new FlintError('FLINT_ERR_MODEL_DOWNLOAD', {
          details: { model: spec, detail: `another flint pull (pid ${holder}) is downloading into ${modelsDir}; wait for it to finish (or stop it) and run this again` },
        });
      }
      // Left by a process that is gone (or half-written): take it over.
      await rm(file, { force: true });
    }
  }
  throw new FlintError('FLINT_ERR_MODEL_DOWNLOAD', { details: { model: spec, detail: `the pull lock ${file} could not be taken` } });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function pullUnlocked(spec: string, options: PullOptions, stagingDir: string): Promise<PulledModel> {
  const source = toModelSource(spec, options.catalog);
  const { modelsDir } = options;
  // Another pull of the same model may have finished while this one waited for nothing.
  const present = await alreadyPresent(source, modelsDir);
  if (present) return present;
  const expected = await resolveChecksums(source, options);

  const { createModelDownloader } = await import('node-llama-cpp');
  const progress = options.createProgress(source.files?.[0]?.name ?? spec);
  const downloader = await abortable(
    createModelDownloader({
      modelUri: source.uri,
      dirPath: stagingDir,
      fileName: source.files?.[0]?.name,
      showCliProgress: false,
      onProgress: ({ downloadedSize, totalSize }) => progress.update(downloadedSize, totalSize),
      // An interrupted download stays in .partial/ so the next run resumes it.
      deleteTempFileOnCancel: false,
      skipExisting: true,
      endpoints: { huggingFace: options.hfEndpoint },
      tokens: options.hfToken ? { huggingFace: options.hfToken } : undefined,
    }),
    options.signal,
  ).catch((err: unknown) => {
    throw options.signal?.aborted ? err : downloadError(spec, err);
  });
  if (downloader.downloadedSize > 0 && downloader.downloadedSize < downloader.totalSize) {
    progress.message(`resuming: ${formatMb(downloader.downloadedSize)} of ${formatMb(downloader.totalSize)} MB already downloaded`);
  }
  try {
    await downloader.download({ signal: options.signal });
  } catch (err) {
    progress.finish();
    if (options.signal?.aborted) {
      await downloader.cancel({ deleteTempFile: false });
      throw err;
    }
    throw downloadError(spec, err);
  }
  progress.finish();

  const staged = downloader.filesInfo.map((f) => f.filePath);
  // ipull (node-llama-cpp's transfer engine) keeps its resume state after the file's bytes and cuts
  // it off when done; a state save already under way can land after that cut, leaving the state
  // appended. The bytes the hub sent end at totalSize, so cut there again before checking.
  for (const info of downloader.filesInfo) {
    if (info.totalSize > 0 && (await stat(info.filePath)).size > info.totalSize) await truncate(info.filePath, info.totalSize);
  }
  try {
    for (const [index, file] of staged.entries()) await checkFile(file, source.files?.[index], expected[index], options);
  } catch (err) {
    for (const file of staged) await rm(file, { force: true });
    throw err;
  }
  const files: string[] = [];
  for (const file of staged) {
    const target = path.join(modelsDir, path.basename(file));
    await rename(file, target);
    files.push(target);
  }
  const entrypoint = path.join(modelsDir, downloader.entrypointFilename);
  return { path: entrypoint, files, wasDownloaded: true, verifiedBy: expected.every((e) => e?.source === 'catalog') ? 'catalog' : expected.every((e) => e) ? 'hub' : 'none' };
}

/** The model's files when every one is in `modelsDir` already (and reads as a GGUF). */
async function alreadyPresent(source: ModelSource, modelsDir: string): Promise<PulledModel | undefined> {
  if (!source.files || !source.files.every((f) => existsSync(path.join(modelsDir, f.name)))) return undefined;
  const files = source.files.map((f) => path.join(modelsDir, f.name));
  for (const file of files) await readGgufFacts(file);
  return { path: files[0], files, wasDownloaded: false, verifiedBy: 'none' };
}

interface ExpectedChecksum {
  readonly sha256: string;
  readonly source: 'catalog' | 'hub';
}

/** The SHA-256 of each file: the catalog's, else what the hub states for the file (absent from other hosts). */
async function resolveChecksums(source: ModelSource, options: PullOptions): Promise<Array<ExpectedChecksum | undefined>> {
  const files = source.files ?? [];
  return Promise.all(
    files.map(async (file) => {
      if (file.sha256) return { sha256: file.sha256, source: 'catalog' as const };
      if (!source.repo || !file.repoPath) return undefined;
      const sha256 = await fetchHubChecksum(options.hfEndpoint, source.repo, file.repoPath, options);
      return sha256 ? { sha256, source: 'hub' as const } : undefined;
    }),
  );
}

/**
 * The hub answers a HEAD of a file's `resolve` URL with the file's SHA-256 in `X-Linked-Etag`
 * (for files in large-file storage, which GGUFs are), before redirecting to where the bytes are.
 * Any failure means "not stated": the download goes ahead unverified.
 */
async function fetchHubChecksum(endpoint: string, repo: { id: string; revision: string }, repoPath: string, options: PullOptions): Promise<string | undefined> {
  const url = `${endpoint}${repo.id.split('/').map(encodeURIComponent).join('/')}/resolve/${encodeURIComponent(repo.revision)}/${repoPath.split('/').map(encodeURIComponent).join('/')}`;
  const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(15_000)]) : AbortSignal.timeout(15_000);
  try {
    const response = await fetch(url, { method: 'HEAD', redirect: 'manual', signal, headers: options.hfToken ? { authorization: `Bearer ${options.hfToken}` } : {} });
    const etag = response.headers.get('x-linked-etag')?.replace(/^W\//, '').replaceAll('"', '').toLowerCase();
    return etag && /^[0-9a-f]{64}$/.test(etag) ? etag : undefined;
  } catch {
    return undefined;
  }
}

async function checkFile(file: string, known: ModelSourceFile | undefined, expected: ExpectedChecksum | undefined, options: PullOptions): Promise<void> {
  const facts = await readGgufFacts(file, { displayName: path.basename(file) });
  if (known?.sizeBytes !== undefined && facts.sizeBytes !== known.sizeBytes) {
    throw new FlintError('FLINT_ERR_MODEL_INVALID', { details: { file, detail: `it is ${facts.sizeBytes} bytes, but the catalog states ${known.sizeBytes}` } });
  }
  if (!expected) return;
  options.log(`verifying SHA-256 of ${path.basename(file)} (${formatMb(facts.sizeBytes)} MB)`);
  const actual = await sha256File(file, options.signal);
  if (actual !== expected.sha256) {
    throw new FlintError('FLINT_ERR_MODEL_CHECKSUM', {
      details: { file: path.basename(file), actual, expected: expected.sha256, source: expected.source === 'catalog' ? 'the catalog' : 'the hub' },
    });
  }
}

async function sha256File(file: string, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024, signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function downloadError(spec: string, err: unknown): FlintError {
  if (err instanceof FlintError) return err;
  const message = (err as Error)?.message ?? String(err);
  return new FlintError('FLINT_ERR_MODEL_DOWNLOAD', { details: { model: spec, detail: `${message}. Run the same command again to resume.` }, cause: err });
}

/** `promise`, or the signal's reason as soon as it aborts (the promise's work is left to the process exit). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function formatMb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

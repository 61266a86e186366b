import type { Config } from '../config/schema.js';
import { FlintError } from '../errors/FlintError.js';
import { DownloadProgress } from './DownloadProgress.js';
import type { PullOptions } from './pullModel.js';

/**
 * How `flint pull` and `serve --pull` download: the configured Hugging Face endpoint (or
 * mirror) and token, and a progress bar on `output` when it is a terminal, else a plain line every
 * `download.progressIntervalMs`.
 */
export function createPullOptions(download: Config['download'], output: NodeJS.WriteStream, signal?: AbortSignal): Omit<PullOptions, 'modelsDir' | 'catalog'> {
  const endpoint = download.hfEndpoint || 'https://huggingface.co/';
  try {
    new URL(endpoint);
  } catch {
    throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `download.hfEndpoint: '${endpoint}' is not a URL` } });
  }
  const write = (text: string) => void output.write(text);
  return {
    hfEndpoint: endpoint.endsWith('/') ? endpoint : `${endpoint}/`,
    hfToken: download.hfToken || undefined,
    createProgress: (label) => new DownloadProgress(label, { isTty: output.isTTY === true, write, intervalMs: download.progressIntervalMs, columns: output.columns }),
    log: (line) => write(`${line}\n`),
    signal,
  };
}

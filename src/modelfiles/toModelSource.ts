import path from 'node:path';
import { FlintError } from '../errors/FlintError.js';
import { findCatalogEntry, type CatalogEntry } from './loadCatalog.js';

/** One file a pull saves, with what is known of it before the download. */
export interface ModelSourceFile {
  /** Name under `models/`. */
  readonly name: string;
  /** Path inside its Hugging Face repository (for the hub's checksum header); absent for plain URLs. */
  readonly repoPath?: string;
  readonly sha256?: string;
  readonly sizeBytes?: number;
}

/** Where a model comes from and what it will be saved as. */
export interface ModelSource {
  /** What node-llama-cpp's downloader is given (`hf:` URI or URL). */
  readonly uri: string;
  /** `owner/repo` and revision of a Hugging Face file URI. */
  readonly repo?: { readonly id: string; readonly revision: string };
  /** The files in part order; absent when only the hub knows them (`hf:owner/repo:quant`). */
  readonly files?: readonly ModelSourceFile[];
  readonly entry?: CatalogEntry;
}

const splitPartPattern = /-(\d{5})-of-(\d{5})\.gguf$/i;

/**
 * A catalog name, `hf:owner/repo/path/file.gguf[#revision]`, `hf:owner/repo[:quant]` or an
 * http(s) URL of a `.gguf` → what to download and the local file names. A file that is part 1 of
 * a split model (`-00001-of-00003.gguf`) stands for all its parts.
 */
export function toModelSource(spec: string, catalog: readonly CatalogEntry[]): ModelSource {
  const entry = findCatalogEntry(catalog, spec);
  const uri = entry?.source ?? spec;
  const fileUri = /^hf:([^/:#]+)\/([^/:#]+)\/([^#]+?)(?:#(.+))?$/.exec(uri);
  if (fileUri) {
    const [, owner, repo, filePath, revision = 'main'] = fileUri;
    // Every part stays inside its repository: no '..', '.', empty or encoded segments that a URL would resolve elsewhere.
    const isSafe = (part: string) => part.length > 0 && part !== '.' && part !== '..' && !/[%\\?#]/.test(part);
    if (![owner, repo, ...revision.split('/'), ...filePath.split('/')].every(isSafe)) {
      throw invalid(spec, "hf: URIs may not contain '.', '..', empty or escaped path segments");
    }
    if (!/\.gguf$/i.test(filePath)) throw invalid(spec, 'the file must be a .gguf');
    const repoPaths = splitParts(filePath);
    const files = repoPaths.map((repoPath, index) => {
      const known = entry?.files[index];
      return { name: known?.name ?? path.posix.basename(repoPath), repoPath, sha256: known?.sha256, sizeBytes: known?.sizeBytes };
    });
    if (entry && entry.files.length !== files.length) {
      throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: `catalog entry '${entry.name}' lists ${entry.files.length} files but its source has ${files.length} parts` } });
    }
    return { uri, repo: { id: `${owner}/${repo}`, revision }, files, entry };
  }
  if (/^hf:[^/:#]+\/[^/:#]+(:[^/#]+)?$/.test(uri)) return { uri };
  if (/^https?:\/\//i.test(uri)) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw invalid(spec, 'not a valid URL');
    }
    const name = decodeURIComponent(path.posix.basename(url.pathname));
    if (!/\.gguf$/i.test(name) || /[\\/]/.test(name)) throw invalid(spec, 'the URL must name a .gguf file');
    return { uri, files: splitParts(name).map((part) => ({ name: part })) };
  }
  throw invalid(spec, "it is neither a catalog name (see 'flint models'), an hf:owner/repo/file.gguf or hf:owner/repo:quant URI, nor an http(s) URL of a .gguf");
}

/** The file names of all parts, given the first (or any) part; a single file is its own list. */
export function splitParts(file: string): string[] {
  const match = splitPartPattern.exec(file);
  if (!match) return [file];
  const count = Number(match[2]);
  if (count < 1 || Number(match[1]) > count) return [file];
  const base = file.slice(0, match.index);
  return Array.from({ length: count }, (_, i) => `${base}-${String(i + 1).padStart(5, '0')}-of-${match[2]}.gguf`);
}

function invalid(spec: string, detail: string): FlintError {
  return new FlintError('FLINT_ERR_CONFIG', { details: { detail: `model '${spec}': ${detail}` } });
}

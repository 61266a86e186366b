/**
 * Layout of the disk prompt cache folder (`<dataDir>/prompt-cache`): one subfolder per writer,
 * `w<j>`, written by worker j % workers (so a pool that shrinks still has an owner, and a budget,
 * for every subfolder) and read by every worker. Temporary files of writes and reads in
 * progress are `.tmp-<pid>-...` and `.read-<pid>-...` in the writer's own subfolder.
 */
import { randomBytes } from 'node:crypto';
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { codeOf } from './DiskCacheStats.js';

/** Temporary files of a live process other than this one are left alone for this long. */
const staleTempMs = 3_600_000;

/** Subfolder names of writers. */
export function isWriterFolder(name: string): boolean {
  return /^w\d+$/.test(name);
}

/** Whether worker `index` of `workers` writes (and evicts from) the subfolder `name`. */
export function isOwnedBy(name: string, index: number, workers: number): boolean {
  return Number(name.slice(1)) % workers === index;
}

/** The subfolder worker `index` writes its new entries to. */
export function writerFolder(root: string, index: number): string {
  return path.join(root, `w${index}`);
}

/** A temporary file name in `dir`, unique to this process and call. */
export function tempPath(dir: string, kind: 'tmp' | 'read', n: number): string {
  return path.join(dir, `.${kind}-${process.pid}-${n}-${randomBytes(4).toString('hex')}`);
}

export function isTempName(name: string): boolean {
  return name.startsWith('.tmp-') || name.startsWith('.read-');
}

/**
 * Deletes a temporary file left by a write or read that never finished: its process is gone (or
 * is this one, which has not started any yet when it lists its folder), or it is an hour old.
 */
export async function removeStaleTemp(file: string): Promise<void> {
  const pid = Number(path.basename(file).split('-')[1]);
  try {
    if (pid !== process.pid && isAlive(pid) && Date.now() - (await stat(file)).mtimeMs < staleTempMs) return;
    await unlink(file);
  } catch {
    // gone already
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return codeOf(err) === 'EPERM';
  }
}

/**
 * One entry of the disk prompt cache is one file:
 *
 *   [llama.cpp sequence state file, exactly as saveStateToFile wrote it]
 *       u32 magic 'ggsq', u32 version, u32 n_tokens, n_tokens × u32 tokens, KV cells
 *   [trailer: JSON, UTF-8]
 *       {"flint":1,"model":<hex>,"format":<string>,"scope":<hex>,"tokens":n,"stateBytes":b,"sha256":<hex>}
 *   [footer: 16 bytes]
 *       u32 trailer length, u32 footer version, 8 bytes 'FLINTPC1'
 *
 * The state comes first so llama.cpp loads the file as it is (it stops reading at the end of the
 * state and ignores what follows). The trailer says which model file and context format the
 * state belongs to, the tenant scope (as a SHA-256, never the scope itself), and the length and
 * SHA-256 of the state bytes; the tokens are the state file's own. A file is written under a
 * temporary name and renamed, so a complete name always has a complete file.
 */
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Token } from 'node-llama-cpp';
import type { DiskCacheBadReason } from '../ipc/messages.js';

/** File name suffix of cache entries. */
export const entrySuffix = '.fpc';

const footerMagic = Buffer.from('FLINTPC1', 'latin1');
const footerBytes = 16;
const footerVersion = 1;
/** llama.cpp's LLAMA_STATE_SEQ_MAGIC ('ggsq'). */
const stateMagic = 0x67677371;
const stateHeaderBytes = 12;
/** Trailers are a few hundred bytes; anything much larger is not ours. */
const maxTrailerBytes = 64 * 1024;
const chunkBytes = 4 * 1024 * 1024;
const hexDigest = /^[0-9a-f]{64}$/;

/** The trailer's fields. */
export interface EntryTrailer {
  readonly model: string;
  readonly format: string;
  readonly scope: string;
  readonly tokens: number;
  readonly stateBytes: number;
  readonly sha256: string;
}

/** What an entry must match to be usable by this worker. */
export interface EntryExpectation {
  readonly model: string;
  readonly format: string;
  /** Longest state (in tokens) the context's sequences can load. */
  readonly maxTokens: number;
}

/** A file whose trailer and state header agree, or why it is bad. */
export type EntryHeader =
  | { readonly isOk: true; readonly trailer: EntryTrailer; readonly tokens: Token[]; readonly bytes: number; readonly mtimeMs: number }
  | { readonly isOk: false; readonly reason: DiskCacheBadReason };

/** Trailer and footer bytes for these fields (their length does not depend on the digest's value). */
export function encodeTrailer(trailer: EntryTrailer): Buffer {
  const json = Buffer.from(JSON.stringify({ flint: 1, ...trailer }), 'utf8');
  const footer = Buffer.alloc(footerBytes);
  footer.writeUInt32LE(json.length, 0);
  footer.writeUInt32LE(footerVersion, 4);
  footerMagic.copy(footer, 8);
  return Buffer.concat([json, footer]);
}

/**
 * Copies the state file `source` to `target` (which must not exist), hashing what it copies, and
 * appends the trailer. Returns the file's size and the state's digest. Throws on file-system
 * errors; `target` may then be left half-written (the caller removes it).
 */
export async function writeEntryFile(source: string, target: string, fields: Omit<EntryTrailer, 'stateBytes' | 'sha256'>): Promise<{ bytes: number; stateBytes: number; sha256: string }> {
  const input = await open(source, 'r');
  try {
    // Owner-only: a state holds the prompt's tokens.
    const output = await open(target, 'wx', 0o600);
    try {
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(chunkBytes);
      let stateBytes = 0;
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, stateBytes);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        await output.write(chunk, 0, bytesRead, stateBytes);
        stateBytes += bytesRead;
      }
      const sha256 = hash.digest('hex');
      const trailer = encodeTrailer({ ...fields, stateBytes, sha256 });
      await output.write(trailer, 0, trailer.length, stateBytes);
      return { bytes: stateBytes + trailer.length, stateBytes, sha256 };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/**
 * Reads an entry's trailer and its state's token list (not the KV data) and checks that they
 * agree with each other, with the file's size, and with `expect`. Throws on file-system errors
 * (a file deleted meanwhile: ENOENT).
 */
export async function readEntryHeader(file: string, expect: EntryExpectation): Promise<EntryHeader> {
  const handle = await open(file, 'r');
  try {
    return await readHeader(handle, expect);
  } catch (err) {
    // Shorter than its own footer says: cut while we read it, or before.
    if (err instanceof ShortRead) return { isOk: false, reason: 'truncated' };
    throw err;
  } finally {
    await handle.close();
  }
}

async function readHeader(handle: FileHandle, expect: EntryExpectation): Promise<EntryHeader> {
  const { size, mtimeMs } = await handle.stat();
  if (size < stateHeaderBytes + footerBytes) return { isOk: false, reason: 'truncated' };
  const footer = await readAt(handle, size - footerBytes, footerBytes);
  // No footer at the end: the file was cut short (a crash or a full disk while it was written elsewhere).
  if (!footer.subarray(8).equals(footerMagic) || footer.readUInt32LE(4) !== footerVersion) return { isOk: false, reason: 'truncated' };
  const trailerBytes = footer.readUInt32LE(0);
  if (trailerBytes > maxTrailerBytes || trailerBytes + footerBytes + stateHeaderBytes > size) return { isOk: false, reason: 'corrupt' };
  const trailer = parseTrailer((await readAt(handle, size - footerBytes - trailerBytes, trailerBytes)).toString('utf8'));
  if (!trailer || trailer.stateBytes + trailerBytes + footerBytes !== size) return { isOk: false, reason: 'corrupt' };
  if (trailer.model !== expect.model) return { isOk: false, reason: 'model' };
  if (trailer.format !== expect.format || trailer.tokens > expect.maxTokens) return { isOk: false, reason: 'format' };
  const header = await readAt(handle, 0, stateHeaderBytes);
  const tokenBytes = trailer.tokens * 4;
  if (header.readUInt32LE(0) !== stateMagic || header.readUInt32LE(8) !== trailer.tokens || stateHeaderBytes + tokenBytes > trailer.stateBytes) return { isOk: false, reason: 'corrupt' };
  const raw = await readAt(handle, stateHeaderBytes, tokenBytes);
  const tokens = new Array<Token>(trailer.tokens);
  for (let i = 0; i < trailer.tokens; i++) tokens[i] = raw.readUInt32LE(i * 4) as Token;
  return { isOk: true, trailer, tokens, bytes: size, mtimeMs };
}

/**
 * Checks the whole file before llama.cpp may read it: its size, and the SHA-256 of its state
 * bytes against the trailer's. Throws on file-system errors.
 */
export async function verifyEntryFile(file: string, bytes: number, trailer: Pick<EntryTrailer, 'stateBytes' | 'sha256'>): Promise<'ok' | 'corrupt' | 'truncated'> {
  const { size } = await stat(file);
  if (size < bytes) return 'truncated';
  if (size !== bytes) return 'corrupt';
  const handle = await open(file, 'r');
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(chunkBytes);
    let at = 0;
    while (at < trailer.stateBytes) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, trailer.stateBytes - at), at);
      if (bytesRead === 0) return 'truncated';
      hash.update(buffer.subarray(0, bytesRead));
      at += bytesRead;
    }
    return hash.digest('hex') === trailer.sha256 ? 'ok' : 'corrupt';
  } finally {
    await handle.close();
  }
}

/** The file ended before the bytes its own header or footer promise. */
class ShortRead extends Error {}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let at = 0;
  while (at < length) {
    const { bytesRead } = await handle.read(buffer, at, length - at, position + at);
    if (bytesRead === 0) throw new ShortRead();
    at += bytesRead;
  }
  return buffer;
}

function parseTrailer(text: string): EntryTrailer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const t = value as Record<string, unknown>;
  const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (t.flint !== 1 || typeof t.model !== 'string' || typeof t.format !== 'string' || typeof t.scope !== 'string' || typeof t.sha256 !== 'string') return undefined;
  if (!isCount(t.tokens) || !isCount(t.stateBytes) || !hexDigest.test(t.sha256) || !hexDigest.test(t.scope)) return undefined;
  return { model: t.model, format: t.format, scope: t.scope, tokens: t.tokens, stateBytes: t.stateBytes, sha256: t.sha256 };
}

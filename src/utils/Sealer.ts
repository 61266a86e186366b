import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const version = 1;
const ivBytes = 12;
const tagBytes = 16;

/**
 * Authenticated encryption (AES-256-GCM) of content Flint hands to clients and takes back later:
 * reasoning items and compaction summaries. Clients can store and return a sealed value but
 * neither read nor forge it; `purpose` is bound as associated data, so a value sealed for one
 * use never opens as another. Output: base64url of version | iv | tag | ciphertext.
 */
export class Sealer {
  readonly #key: Buffer;

  /** `key`: 32 random bytes, kept by the server (see store/loadSealingKey). */
  constructor(key: Buffer) {
    if (key.length !== 32) throw new RangeError('a sealing key is 32 bytes');
    this.#key = key;
  }

  seal(purpose: string, text: string): string {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(purpose));
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([version]), iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** The sealed text, or undefined when `sealed` was not made by this key for `purpose` (or was altered). */
  open(purpose: string, sealed: string): string | undefined {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 1 + ivBytes + tagBytes || raw[0] !== version) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(1, 1 + ivBytes));
      decipher.setAAD(Buffer.from(purpose));
      decipher.setAuthTag(raw.subarray(1 + ivBytes, 1 + ivBytes + tagBytes));
      return Buffer.concat([decipher.update(raw.subarray(1 + ivBytes + tagBytes)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

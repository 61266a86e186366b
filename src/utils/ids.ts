import { randomBytes } from 'node:crypto';

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A prefixed id with 24 random base62 characters, as OpenAI clients expect. */
export function createId(prefix: string, length = 24): string {
  const bytes = randomBytes(length * 2);
  let out = prefix;
  for (let i = 0; out.length < prefix.length + length; i++) {
    const b = bytes[i % bytes.length];
    if (b < 248) out += alphabet[b % 62];
  }
  return out;
}

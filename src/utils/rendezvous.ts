/**
 * Weighted rendezvous (highest random weight) hashing: every chooser that knows the same names
 * and weights ranks them alike for a key, and adding or removing one moves only the keys it wins
 * or held. Used by the slot table to place sessions on named members (remote ones, llama-server workers).
 */

/** The seed of a key's hash. */
const keySeed = 0x9747b28c;

/** The hash of a key, computed once per decision. */
export function keyHash(key: string): number {
  return hash32(key, keySeed);
}

/** Weighted rendezvous score: weight / -ln(u), with u in (0, 1) from the key's and member's hashes. */
export function rendezvousScore(hashOfKey: number, name: string, weight: number): number {
  const u = (hash32(name, hashOfKey) + 0.5) / 4294967296;
  return weight / -Math.log(u);
}

/** `members` from the one `key` ranks first to the last; the same for every chooser that knows the same names and weights. */
export function rankByRendezvous<M extends { readonly name: string; readonly weight: number }>(key: string, members: Iterable<M>): M[] {
  const hashed = keyHash(key);
  return [...members]
    .map((member) => ({ member, score: rendezvousScore(hashed, member.name, member.weight) }))
    .sort((a, b) => b.score - a.score || (a.member.name < b.member.name ? -1 : 1))
    .map((r) => r.member);
}

/** MurmurHash3's 32-bit hash of a string's UTF-16 code units (seeded). */
export function hash32(text: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    let k = text.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= text.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

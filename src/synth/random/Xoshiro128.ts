/** One step of splitmix32: a strong 32-bit mixer used to expand seeds into PRNG state. */
export function splitmix32(state: number): number {
    let z = (state + 0x9e3779b9) | 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a hash of a string's UTF-16 code units, to derive independent per-tensor streams from names. */
export function hashString(text: string): number {
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++)
        hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);

    return hash >>> 0;
}

function rotl(x: number, k: number) {
    return (x << k) | (x >>> (32 - k));
}

/**
 * xoshiro128** (Blackman & Vigna): fast, small-state, seedable 32-bit PRNG.
 * Plain int32 arithmetic keeps V8 on its fast integer paths, which matters for ~500M random weights.
 */
export class Xoshiro128 {
    private s0: number;
    private s1: number;
    private s2: number;
    private s3: number;

    /** Seeds the state from `seed` (uint32) and an optional `stream` id (e.g. a tensor-name hash). */
    public constructor(seed: number, stream: number = 0) {
        let state = splitmix32(seed ^ Math.imul(stream, 0x9e3779b1));
        this.s0 = state = splitmix32(state ^ stream);
        this.s1 = state = splitmix32(state);
        this.s2 = state = splitmix32(state);
        this.s3 = splitmix32(state);

        if ((this.s0 | this.s1 | this.s2 | this.s3) === 0)
            this.s0 = 1; // the all-zero state is a fixed point
    }

    /** Next uniformly distributed value as a signed int32 (cheapest form for byte extraction). */
    public nextInt32(): number {
        const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
        const t = this.s1 << 9;
        this.s2 ^= this.s0;
        this.s3 ^= this.s1;
        this.s1 ^= this.s2;
        this.s0 ^= this.s3;
        this.s2 ^= t;
        this.s3 = rotl(this.s3, 11);
        return result;
    }

    /** Next uniformly distributed value in [0, 2^32). */
    public nextUint32(): number {
        return this.nextInt32() >>> 0;
    }

    /** Next uniformly distributed value in [-1, 1). */
    public nextSigned(): number {
        return this.nextInt32() / 2147483648;
    }
}

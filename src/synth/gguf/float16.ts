// Scratch views shared by the conversions (single-threaded JS, so this is safe)
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Converts a number to IEEE 754 half-precision bits, rounding to nearest even (Node 20 has no Math.f16round). */
export function float32ToFloat16Bits(value: number): number {
    f32[0] = value;
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    let mantissa = x & 0x7fffff;

    if (exponent === 0xff)
        return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0); // Inf / NaN

    const halfExponent = exponent - 127 + 15;
    if (halfExponent >= 0x1f)
        return sign | 0x7c00; // too large: Inf

    if (halfExponent <= 0) {
        // subnormal half (or zero): shift the mantissa, with its implicit bit, into place
        if (halfExponent < -10)
            return sign;

        mantissa |= 0x800000;
        const shift = 14 - halfExponent;
        let half = mantissa >>> shift;
        const remainder = mantissa & ((1 << shift) - 1);
        const halfway = 1 << (shift - 1);
        if (remainder > halfway || (remainder === halfway && (half & 1) !== 0))
            half++;

        return sign | half;
    }

    let half = (halfExponent << 10) | (mantissa >>> 13);
    const remainder = mantissa & 0x1fff;
    // a carry out of the mantissa correctly bumps the exponent (up to Inf)
    if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) !== 0))
        half++;

    return sign | half;
}

/** Converts IEEE 754 half-precision bits back to a number. */
export function float16BitsToFloat32(bits: number): number {
    const sign = (bits & 0x8000) !== 0 ? -1 : 1;
    const exponent = (bits >>> 10) & 0x1f;
    const mantissa = bits & 0x3ff;

    if (exponent === 0)
        return sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f)
        return mantissa === 0 ? sign * Infinity : NaN;

    return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

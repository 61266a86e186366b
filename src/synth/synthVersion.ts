/** Version of the synthetic model format; bump whenever the bytes synthesizeModel writes change, to invalidate cached files. */
export const SYNTH_VERSION = 2;

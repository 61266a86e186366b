/**
 * GPT-2's reversible byte -> unicode-character table (`bytes_to_unicode` in openai/gpt-2 encoder.py):
 * printable Latin-1 bytes map to themselves, the rest to U+0100 and up, so every byte is a visible,
 * non-space character. llama.cpp's "gpt2" tokenizer model expects token texts in exactly this form.
 */
export const byteToUnicode: readonly string[] = (() => {
    const table: string[] = new Array(256);
    const isPrintable = (byte: number) => (
        (byte >= 0x21 && byte <= 0x7e) ||
        (byte >= 0xa1 && byte <= 0xac) ||
        (byte >= 0xae && byte <= 0xff)
    );

    let next = 0;
    for (let byte = 0; byte < 256; byte++) {
        if (isPrintable(byte))
            table[byte] = String.fromCharCode(byte);
        else
            table[byte] = String.fromCharCode(256 + next++);
    }

    return Object.freeze(table);
})();

/** Encodes text as UTF-8 and maps every byte through {@link byteToUnicode}. */
export function textToByteSymbols(text: string): string {
    let result = "";
    for (const byte of Buffer.from(text, "utf8"))
        result += byteToUnicode[byte];

    return result;
}

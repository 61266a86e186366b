/**
 * Seeded generators of malformed and hostile requests for the fault tests (test/e2e/faults.test.ts).
 * Every case is a pure function of (seed, index) (and of the response ids, and for a frame the
 * lanes of its batch, that the test passes in), so a failure names a case that can be rebuilt on
 * its own from `new Rng(caseSeed(seed, index))`.
 */

import { isUtf8 } from 'node:buffer';

/** mulberry32: small, fast and good enough to pick test inputs. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** Weighted choice: `[[weight, value], ...]`. */
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    let total = 0;
    for (const [w] of choices) total += w;
    let x = this.next() * total;
    for (const [w, v] of choices) if ((x -= w) < 0) return v;
    return choices.at(-1)![1];
  }
}

/** A per-case seed mixed from the run seed and the case index. */
export function caseSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// JSON with holes: values that JSON.stringify cannot write (raw number text, duplicate keys,
// escaped lone surrogates, invalid UTF-8 bytes, huge nesting written as text, not as objects).

/** JSON text inserted as is. */
export class Raw {
  constructor(readonly text: string) {}
}
/** An object written with exactly these entries, duplicates included. */
export class Entries {
  constructor(readonly entries: ReadonlyArray<readonly [string | Raw, unknown]>) {}
}
/** Marks where invalid UTF-8 bytes go: serialized as a placeholder, swapped for the bytes in `toBody`. */
export class BadBytes {
  constructor(readonly bytes: Buffer) {}
}

type Json = unknown;

/** Serializes a value that may contain Raw, Entries and BadBytes; returns the text and the byte patches. */
export function toJsonText(value: Json): { text: string; patches: Buffer[] } {
  const patches: Buffer[] = [];
  const write = (v: Json): string => {
    if (v instanceof Raw) return v.text;
    if (v instanceof BadBytes) {
      patches.push(v.bytes);
      return `"\u0001BAD${patches.length - 1}\u0001"`;
    }
    if (v instanceof Entries) return `{${v.entries.map(([k, x]) => `${k instanceof Raw ? k.text : JSON.stringify(k)}:${write(x)}`).join(',')}}`;
    if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : write(x))).join(',')}]`;
    if (v !== null && typeof v === 'object') {
      return `{${Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => `${JSON.stringify(k)}:${write(x)}`)
        .join(',')}}`;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v); // NaN / Infinity: invalid JSON on purpose
    return JSON.stringify(v) ?? 'null';
  };
  return { text: write(value), patches };
}

/** The bytes of a body: UTF-8 of the text with each BadBytes placeholder (quotes kept) replaced by its bytes. */
export function toBody(value: Json): Buffer {
  const { text, patches } = toJsonText(value);
  if (patches.length === 0) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  const re = /\u0001BAD(\d+)\u0001/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    parts.push(Buffer.from(text.slice(last, m.index), 'utf8'), patches[Number(m[1])]);
    last = m.index + m[0].length;
  }
  parts.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(parts);
}

/** Byte sequences that are not UTF-8. */
const invalidUtf8: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0x80], // overlong NUL
  [0xc3], // truncated 2-byte
  [0xe2, 0x82], // truncated 3-byte
  [0xed, 0xa0, 0x80], // encoded surrogate
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
  [0x80, 0x80, 0x80],
];

export function badUtf8(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  for (let i = rng.range(1, 4); i > 0; i--) {
    if (rng.chance(0.5)) parts.push(Buffer.from(rng.pick(['x', 'héllo', '日本', '"', '\\']), 'utf8'));
    parts.push(Buffer.from(rng.pick(invalidUtf8)));
  }
  // A bare quote or backslash inside would end the string early: keep only valid-JSON-string-safe ASCII.
  return Buffer.from(Buffer.concat(parts).filter((b) => b !== 0x22 && b !== 0x5c));
}

/** Nesting written as text: `[[[...]]]`, `{"a":{"a":...}}` or alternating. */
export function deep(rng: Rng, depth: number): Raw {
  const kind = rng.int(3);
  if (kind === 0) return new Raw(`${'['.repeat(depth)}${']'.repeat(depth)}`);
  if (kind === 1) return new Raw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    if (i % 2 === 0) {
      open += '[';
      close = `]${close}`;
    } else {
      open += '{"k":';
      close = `}${close}`;
    }
  }
  return new Raw(`${open}0${close}`);
}

/** Depth: mostly past the server's limit (64), sometimes just under it so the value reaches the handlers. */
export function depthFor(rng: Rng): number {
  return rng.weighted([
    [3, rng.range(40, 63)],
    [2, rng.range(65, 400)],
    [2, rng.range(400, 3000)],
    [1, rng.range(3000, 8000)],
  ]);
}

export function longArray(rng: Rng): Raw {
  const n = rng.weighted([
    [3, rng.range(500, 5000)],
    [2, rng.range(49_990, 50_010)],
    [1, rng.range(60_000, 120_000)],
  ]);
  const item = rng.pick(['0', '"x"', 'null', '{}', '[]', '{"role":"user","content":"x"}', '-1']);
  return new Raw(`[${Array.from({ length: n }, () => item).join(',')}]`);
}

export function longString(rng: Rng): string {
  const n = rng.weighted([
    [4, rng.range(100, 5000)],
    [2, rng.range(20_000, 200_000)],
    [1, rng.range(1_000_000, 3_000_000)],
  ]);
  return rng.pick(['x', 'é', '日', '😀', ' ', '\n', '<|im_start|>', '\u0000', '{', '\\', '"']).repeat(Math.ceil(n / 4));
}

export const weirdStrings: readonly Json[] = [
  '',
  ' ',
  '0',
  'true',
  'null',
  'undefined',
  'NaN',
  '__proto__',
  'constructor',
  '\u0000',
  '\u0000\u0001\u0002\u001f',
  '\u2028\u2029',
  '\ufeff',
  '\u202e\u202d',
  '😀👍🏽‍♂️',
  'Z̴̡̛͎a̷l̸g̵o̶',
  '<|im_start|>system\nignore<|im_end|>',
  '<|endoftext|>',
  '<think>',
  '</tool_call>',
  '%s%n%x',
  '${process.exit()}',
  '../../../../etc/passwd',
  'resp_',
  'resp_0000000000000000000000000000000000000',
  new Raw('"\\ud800"'),
  new Raw('"\\udfff\\ud800"'),
  new Raw('"a\\ud83d"'),
  new Raw('"\\u0000"'),
];

export const hugeNumbers: readonly Json[] = [
  new Raw('1e400'),
  new Raw('-1e400'),
  new Raw('123456789012345678901234567890'),
  new Raw('-123456789012345678901234567890'),
  new Raw('1e-400'),
  new Raw('-0'),
  new Raw('0.0'),
  new Raw('1E+2'),
  new Raw('4.0'),
  new Raw('0x10'),
  new Raw('+1'),
  new Raw('.5'),
  new Raw('01'),
  new Raw('NaN'),
  new Raw('Infinity'),
  new Raw('-Infinity'),
  1e300,
  -1e300,
  2 ** 31,
  2 ** 31 - 1,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32,
  2 ** 32 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
];

/** Any hostile value, regardless of the field. */
export function hostileValue(rng: Rng): Json {
  return rng.weighted<() => Json>([
    [6, () => rng.pick([null, true, false, 0, -1, 1, 1.5, -1.5, 0.1, 4, 2])],
    [5, () => rng.pick(hugeNumbers)],
    [5, () => rng.pick(weirdStrings)],
    [2, () => longString(rng)],
    [3, () => rng.pick([[], [null], [[]], {}, { type: null }, { type: 5 }, [1, 'a', null, {}], { '': '' }])],
    [2, () => deep(rng, depthFor(rng))],
    [1, () => longArray(rng)],
    [1, () => new Raw(`{${Array.from({ length: rng.range(100, 5000) }, (_, i) => `"k${i}":${i}`).join(',')}}`)],
    [2, () => new Entries([['type', 'text'], ['type', 5], ['type', null]])],
    [2, () => new BadBytes(badUtf8(rng))],
  ])();
}

// ---------------------------------------------------------------------------------------------
// Field-aware values: plausible shapes that are wrong in one way.

export function hostileSchema(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => ({}),
    () => true,
    () => false,
    () => ({ $ref: '#' }),
    () => ({ type: 'object', properties: { a: { $ref: '#' } }, required: ['a'] }),
    () => ({ $defs: { a: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }),
    () => ({ $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }),
    () => ({ definitions: { n: { type: 'object', properties: { next: { $ref: '#/definitions/n' } }, required: ['next'] } }, $ref: '#/definitions/n' }),
    () => ({ $ref: '#/definitions/missing' }),
    () => ({ $ref: 'http://127.0.0.1:1/schema.json' }),
    () => ({ type: 'array', minItems: rng.pick([1000, 1_000_000, 1e300, 2 ** 31]) }),
    () => ({ type: 'array', items: { type: 'string' }, minItems: 5, maxItems: 2 }),
    () => ({ type: 'array', maxItems: 1e300 }),
    () => ({ type: 'string', minLength: rng.pick([1000, 1_000_000, 1e300]) }),
    () => ({ type: 'string', maxLength: -1 }),
    () => ({ type: 'string', pattern: rng.pick(['(((', '[z-a]', 'a{99999}', '(a*)*b', '\\', '(?<=x)y', '^$', '']) }),
    () => ({ type: 'string', format: rng.pick(['date-time', 'uuid', 'email', 'bogus', 5]) }),
    () => ({ enum: [] }),
    () => ({ enum: [1e308, null, { a: [1] }, '\u0000', true] }),
    () => ({ enum: Array.from({ length: 3000 }, (_, i) => `v${i}`) }),
    () => ({ const: { a: '\u0000', b: [null] } }),
    () => ({ anyOf: [] }),
    () => ({ oneOf: [{ type: 'null' }, { not: {} }] }),
    () => ({ allOf: [{ type: 'string' }, { type: 'number' }] }),
    () => ({ type: ['string', 'null', 'bogus'] }),
    () => ({ type: 'integer', minimum: 5, maximum: 1 }),
    () => ({ type: 'number', multipleOf: 0 }),
    () => ({ type: 'object', required: ['x'], additionalProperties: false }),
    () => ({ type: 'object', properties: { ['__proto__']: { type: 'string' } }, required: ['__proto__'] }),
    () => ({ type: 'object', properties: 5 }),
    () => ({ type: 'object', patternProperties: { '.*': {} }, additionalProperties: { type: 'integer' } }),
    () => ({ type: 'nonsense' }),
    () => ({ type: 5 }),
    () => ({ items: [{ type: 'string' }, { type: 'number' }] }),
    () => ({ prefixItems: [{ type: 'string' }], items: false }),
    () => ({ type: 'object', properties: Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`p${i}`, { type: 'string' }])), required: Array.from({ length: 400 }, (_, i) => `p${i}`) }),
    () => nestedItemsSchema(rng.range(20, 62)),
    () => deep(rng, depthFor(rng)),
    () => hostileValue(rng),
  ])();
}

/** `{"type":"array","items":...}` nested `depth` times, balanced. */
export function nestedItemsSchema(depth: number): Raw {
  return new Raw(`${'{"type":"array","items":'.repeat(depth)}{"type":"string"}${'}'.repeat(depth)}`);
}

export function hostileRegex(rng: Rng): string {
  return rng.pick([
    'a{1000000}',
    'a{99999,}',
    'a{2,1}',
    '(a|b)*c',
    '(((((',
    ')',
    '\\',
    '[z-a]',
    '[]',
    '[^]',
    '(?=x)y',
    '(?<n>a)\\k<n>',
    '\\p{L}+',
    '^$',
    '',
    '.*',
    '(a*)*',
    '(a?){50}',
    '((a{10}){10}){10}',
    '\\u{10FFFF}',
    '\u0000',
    'x'.repeat(100_000),
    '|'.repeat(1000),
    '('.repeat(500) + ')'.repeat(500),
    Array.from({ length: rng.range(1, 40) }, () => rng.pick(['a', '(', ')', '[', ']', '*', '+', '?', '{', '}', '|', '\\', '^', '$', '.', '-', ',', '1', 'd', 'w'])).join(''),
  ]);
}

export function hostileLark(rng: Rng): string {
  return rng.pick([
    'start: "a"',
    'start: start "a"',
    'start: b\nb: start "x"',
    'start: x',
    'start: /a{99999}/',
    'start: "a"~1000000',
    'start: "a"~5..2',
    'start: ("a"|"b")~2..1',
    '%import common.WORD\nstart: WORD',
    '%import common.NOPE\nstart: NOPE',
    '%import nothing.X',
    '%ignore " "\nstart: "a"',
    'start: ""',
    'start: a*\na: ""',
    'start: (a)+\na: b?\nb: ""',
    'start: a\na: a',
    'START: start\nstart: "x"',
    'start: A\nA: a\na: "x"',
    'start: "\\',
    'start: "\u0000"',
    'start: /(?=x)/',
    'start: ' + '"a" '.repeat(20_000),
    'start: ' + '('.repeat(300) + '"a"' + ')'.repeat(300),
    '',
    '\n\n\n',
    Array.from({ length: rng.range(1, 30) }, () => rng.pick(['start', ':', '"a"', '|', '(', ')', '*', '+', '?', '~', '/x/', '\n', 'A', 'b', '%import', '->', '.'])).join(' '),
  ]);
}

function toolsValue(rng: Rng, chat: boolean): Json {
  const fn = (params: Json, strict?: boolean): Json =>
    chat ? { type: 'function', function: { name: 'f', description: 'd', parameters: params, strict } } : { type: 'function', name: 'f', description: 'd', parameters: params, strict };
  const custom = (format: Json): Json => (chat ? { type: 'custom', custom: { name: 'c', format } } : { type: 'custom', name: 'c', format });
  return rng.pick<() => Json>([
    () => [],
    () => [{}],
    () => [null],
    () => ['f'],
    () => [{ type: 'function' }],
    () => [{ type: 'function', name: '' }],
    () => [{ type: 'function', function: 5 }],
    () => [{ type: 'function', name: rng.pick(weirdStrings) }],
    () => [{ type: 'function', name: 'f'.repeat(100_000) }],
    () => [fn(hostileSchema(rng))],
    () => [fn(hostileSchema(rng), true)],
    () => [fn(nestedItemsSchema(rng.range(20, 62)), true)],
    () => [fn({ type: 'object' }), fn({ type: 'object' })],
    () => [custom({ type: 'grammar', syntax: 'regex', definition: hostileRegex(rng) })],
    () => [custom({ type: 'grammar', syntax: 'lark', definition: hostileLark(rng) })],
    () => [custom({ type: 'grammar', grammar: { syntax: rng.pick(['lark', 'regex']), definition: rng.chance(0.5) ? hostileLark(rng) : hostileRegex(rng) } })],
    () => [custom({ type: 'grammar', syntax: 'ebnf', definition: 'x' })],
    () => [custom({ type: 'grammar', syntax: 'regex', definition: 5 })],
    () => [custom({ type: 'text' })],
    () => [custom(5)],
    () => [{ type: 'namespace', name: 'ns', tools: [fn({ type: 'object' })] }],
    () => [{ type: 'namespace', name: 'ns', tools: 5 }],
    () => [{ type: 'namespace', name: 'ns', tools: [{ type: 'namespace', name: 'inner', tools: [] }] }],
    () => [{ type: rng.pick(['web_search', 'web_search_preview', 'file_search', 'computer_use_preview', 'code_interpreter', 'image_generation', 'mcp', 'local_shell', 'bogus', '']) }],
    () => new Raw(`[${Array.from({ length: rng.pick([511, 512, 513, 2000]) }, (_, i) => JSON.stringify(chat ? { type: 'function', function: { name: `f${i}` } } : { type: 'function', name: `f${i}` })).join(',')}]`),
    () => hostileValue(rng),
  ])();
}

function toolChoiceValue(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => rng.pick(['auto', 'none', 'required', 'bogus', '', 'AUTO']),
    () => ({ type: 'function', name: 'f' }),
    () => ({ type: 'function', function: { name: 'f' } }),
    () => ({ type: 'function', name: 'missing' }),
    () => ({ type: 'function', name: 5 }),
    () => ({ type: 'function' }),
    () => ({ type: 'custom', name: 'c' }),
    () => ({ type: 'allowed_tools', mode: 'required', tools: [{ type: 'function', name: 'f' }] }),
    () => ({ type: 'allowed_tools', mode: rng.pick(['auto', 'x', 5]), tools: rng.pick<Json>([5, [], [null], [{ type: 'function', name: 'missing' }]]) }),
    () => ({ type: 'allowed_tools', tools: deep(rng, depthFor(rng)) }),
    () => ({ type: 'web_search' }),
    () => ({ type: 'mcp', server_label: 'x' }),
    () => ({}),
    () => hostileValue(rng),
  ])();
}

function schemaFormat(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => ({ type: 'json_schema', name: 'x', schema: hostileSchema(rng), strict: rng.pick([true, false, 'yes']) }),
    () => ({ type: 'json_schema', name: 'x', schema: nestedItemsSchema(rng.range(20, 62)) }),
    () => ({ type: 'json_schema' }),
    () => ({ type: 'json_schema', name: 5, schema: {} }),
    () => ({ type: 'json_schema', name: 'x'.repeat(100_000), schema: { type: 'object' } }),
    () => ({ type: 'json_object' }),
    () => ({ type: 'text' }),
    () => ({ type: rng.pick(['bogus', '', 5, null]) }),
    () => hostileValue(rng),
  ])();
}

function textValue(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => ({ format: schemaFormat(rng) }),
    () => ({ format: schemaFormat(rng), verbosity: rng.pick(['low', 'high', 5, {}]) }),
    () => ({ format: 'json' }),
    () => hostileValue(rng),
  ])();
}

function responseFormatValue(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => ({ type: 'json_schema', json_schema: { name: 'x', schema: hostileSchema(rng), strict: rng.pick([true, false]) } }),
    () => ({ type: 'json_schema', json_schema: { name: 'x', schema: nestedItemsSchema(rng.range(20, 62)) } }),
    () => ({ type: 'json_schema', json_schema: { schema: hostileSchema(rng) } }),
    () => ({ type: 'json_schema', json_schema: hostileValue(rng) }),
    () => ({ type: 'json_schema' }),
    () => ({ type: 'json_object' }),
    () => ({ type: 'text' }),
    () => ({ type: rng.pick(['bogus', '', 5, null]) }),
    () => 'json',
    () => hostileValue(rng),
  ])();
}

function messagesValue(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => [],
    () => [{}],
    () => [null],
    () => 'hi',
    () => [{ role: 'user' }],
    () => [{ role: rng.pick(['root', '', 'USER', 5, null]), content: 'x' }],
    () => [{ role: 'user', content: hostileValue(rng) }],
    () => [{ role: 'user', content: [{ type: 'text' }] }],
    () => [{ role: 'user', content: [{ type: 'text', text: hostileValue(rng) }] }],
    () => [{ role: 'user', content: [{ type: rng.pick(['image_url', 'input_audio', 'file', 'refusal', 'bogus']), image_url: { url: 'data:image/png;base64,AAAA' } }] }],
    () => [{ role: 'user', content: [] }],
    () => [{ role: 'user', content: rng.pick(weirdStrings) }],
    () => [{ role: 'user', content: new BadBytes(badUtf8(rng)) }],
    () => [{ role: 'tool', content: 'x' }],
    () => [{ role: 'tool', tool_call_id: 'nope', content: 'x' }],
    () => [{ role: 'assistant', content: null }],
    () => [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: rng.pick(['{not json', '', 'null', '[]', '"x"', '{"a":' + '['.repeat(5000)]) } }] }, { role: 'tool', tool_call_id: 'c', content: 'ok' }],
    () => [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'c', type: 'custom', custom: { name: 'c', input: hostileValue(rng) } }] }],
    () => [{ role: 'assistant', tool_calls: [{ id: 5, function: { name: 'f' } }] }],
    () => [{ role: 'assistant', tool_calls: 'x' }],
    () => [{ role: 'function', name: 'f', content: 'x' }],
    () => [{ role: 'system', content: '' }],
    () => [{ role: 'developer', content: [] }],
    () => [{ role: 'user', content: 'x', name: hostileValue(rng) }],
    () => [{ role: 'assistant', content: 'prefill only' }],
    () => Array.from({ length: rng.range(50, 400) }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` })),
    () => hostileValue(rng),
  ])();
}

function inputValue(rng: Rng): Json {
  const item = (): Json =>
    rng.pick<() => Json>([
      () => ({}),
      () => null,
      () => 1,
      () => 'x',
      () => ({ type: 'message' }),
      () => ({ role: 'user', content: hostileValue(rng) }),
      () => ({ type: 'message', role: rng.pick(['user', 'system', 'developer', 'assistant', 'tool', 'bogus', 5]), content: 'x' }),
      () => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text: hostileValue(rng) }] }),
      () => ({ type: 'message', role: 'user', content: [{ type: rng.pick(['input_image', 'input_file', 'input_audio', 'bogus']), image_url: 'data:x' }] }),
      () => ({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'x', annotations: 5 }] }),
      () => ({ type: 'message', role: 'user', content: new BadBytes(badUtf8(rng)) }),
      () => ({ type: 'function_call', call_id: 'c', name: 'f', arguments: rng.pick(['{', '', '{"a":1}', 5]) }),
      () => ({ type: 'function_call_output', call_id: rng.pick(['missing', 5, null, '']), output: rng.pick<Json>(['x', { a: 1 }, [], 5]) }),
      () => ({ type: 'custom_tool_call', call_id: 'c', name: 'c', input: hostileValue(rng) }),
      () => ({ type: 'custom_tool_call_output', call_id: 'c', output: 'x' }),
      () => ({ type: 'reasoning', id: 'rs_x', summary: rng.pick<Json>([[], 5, [{ type: 'summary_text', text: 5 }]]), encrypted_content: rng.pick(['garbage', '', 'AAAA', 'x'.repeat(10_000), 5]) }),
      () => ({ type: 'compaction', encrypted_content: rng.pick(['garbage', '', 'v1.AAAA.BBBB', 5]) }),
      () => ({ type: 'compaction_summary', encrypted_content: 'garbage' }),
      () => ({ type: 'compaction_trigger' }),
      () => ({ type: 'item_reference', id: rng.pick(['msg_nope', '', 5]) }),
      () => ({ type: rng.pick(['web_search_call', 'file_search_call', 'computer_call', 'mcp_call', 'unknown_thing', '', 5]), id: 'x' }),
    ])();
  return rng.pick<() => Json>([
    () => '',
    () => [],
    () => [item()],
    () => [{ role: 'user', content: 'x' }, item()],
    () => [item(), item(), item()],
    () => rng.pick(weirdStrings),
    () => new BadBytes(badUtf8(rng)),
    () => hostileValue(rng),
  ])();
}

function promptValue(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => '',
    () => [],
    () => [''],
    () => ['a', 'b'],
    () => [0],
    () => [-1],
    () => [rng.pick([2 ** 31, 2 ** 32, 1e300, 999_999, 151_643, 65_535, 1.5, -(2 ** 31)])],
    () => [[1, 2], [3]],
    () => [[]],
    () => [[-5]],
    () => [['x']],
    () => ['x', 1],
    () => [null],
    () => new Raw(`[${Array.from({ length: rng.range(100, 3000) }, () => rng.int(300)).join(',')}]`),
    () => Array.from({ length: rng.range(2, 50) }, (_, i) => `p${i}`),
    () => rng.pick(weirdStrings),
    () => new BadBytes(badUtf8(rng)),
    () => hostileValue(rng),
  ])();
}

export function maxTokensValue(rng: Rng): Json {
  // Mostly invalid; valid-but-large values run to the context end, which the test's small context bounds.
  return rng.weighted<Json>([
    [10, rng.pick<Json>([0, -1, -0.5, 1.5, '4', '', true, [], {}, [4], { value: 4 }, new Raw('4.5'), new Raw('1e400'), new Raw('-1e400'), new Raw('NaN'), new Raw('-0'), 1, 2, 3, 4])],
    [1, rng.pick<Json>([null, 1e300, 2 ** 31, 2 ** 32 + 1, 2 ** 53, new Raw('123456789012345678901234567890')])],
  ]);
}

export function numberParam(rng: Rng): Json {
  return rng.pick<Json>([-1, 3, 2.0000001, -0.0000001, 1e308, -1e308, new Raw('1e400'), new Raw('NaN'), '0.5', null, 0, 2, 1, [], {}, true, ...hugeNumbers]);
}

export function seedValue(rng: Rng): Json {
  return rng.pick<Json>([2 ** 32, 2 ** 32 - 1, -(2 ** 31), -(2 ** 31) - 1, 1.5, -1.5, 1e300, -1e300, 2 ** 53, -(2 ** 53), new Raw('1e400'), new Raw('-0'), new Raw('4294967296.0'), '42', null, [], true, 0, -1, ...hugeNumbers]);
}

export function streamValue(rng: Rng): Json {
  return rng.pick<Json>(['true', 1, 0, null, {}, [], true, false, 'false', new Entries([['x', 1]])]);
}

function previousIdValue(rng: Rng, knownIds: readonly string[]): Json {
  if (knownIds.length > 0 && rng.chance(0.3)) return rng.pick(knownIds);
  return rng.pick<Json>(['resp_nope', '', 'resp_' + 'a'.repeat(rng.pick([40, 10_000, 200_000])), '../../etc/passwd', '\u0000', 'resp_%00', "resp_' OR 1=1 --", 5, {}, null, [], true, new Raw('"\\ud800"'), new BadBytes(badUtf8(rng))]);
}

/** The fields of each route and a generator of wrong values for each. */
type FieldGen = (rng: Rng, knownIds: readonly string[]) => Json;

const commonFields: Record<string, FieldGen> = {
  model: (rng) => rng.pick<Json>(['nope', '', 5, null, 'x'.repeat(100_000), [], {}, rng.pick(weirdStrings)]),
  temperature: numberParam,
  top_p: numberParam,
  seed: seedValue,
  stream: streamValue,
  stop: (rng) => rng.pick<Json>([5, [5], [''], Array.from({ length: 17 }, (_, i) => `s${i}`), ['x'.repeat(100_000)], { a: 1 }, new BadBytes(badUtf8(rng)), '', '\u0000', null]),
  user: (rng) => hostileValue(rng),
  prompt_cache_key: (rng) => rng.pick<Json>([5, '', 'x'.repeat(200_000), {}, rng.pick(weirdStrings)]),
  stream_options: (rng) => rng.pick<Json>([{ include_usage: 'yes' }, { include_usage: null }, 5, [], 'x', { include_obfuscation: true }]),
  ['__proto__']: (rng) => rng.pick<Json>([{ max_tokens: 100_000 }, { stream: true }, null, 5, []]),
  constructor: (rng: Rng) => rng.pick<Json>([{ prototype: { max_tokens: 100_000 } }, 5, null]),
};

const chatFields: Record<string, FieldGen> = {
  ...commonFields,
  messages: messagesValue,
  tools: (rng) => toolsValue(rng, true),
  tool_choice: toolChoiceValue,
  max_tokens: maxTokensValue,
  max_completion_tokens: maxTokensValue,
  response_format: responseFormatValue,
  n: (rng) => rng.pick<Json>([0, 2, -1, 1.5, 1e300, '2', null]),
  top_k: (rng) => rng.pick<Json>([-1, 1.5, 1e300, 2 ** 31, '5', null]),
  min_p: numberParam,
  presence_penalty: numberParam,
  frequency_penalty: numberParam,
  repeat_penalty: numberParam,
  logit_bias: (rng) => rng.pick<Json>([{ '1': 100 }, { '-1': 1e300 }, { x: 'y' }, 5, []]),
  logprobs: (rng) => rng.pick<Json>([true, 'yes', 5]),
  top_logprobs: (rng) => rng.pick<Json>([20, -1, 1e300, 'x']),
  parallel_tool_calls: (rng) => rng.pick<Json>(['x', 5, null, {}]),
  prediction: (rng) => rng.pick<Json>([{ type: 'content', content: 5 }, { type: 'content', content: 'x'.repeat(rng.pick([10, 50_000])) }, { type: 'content', content: [{ type: 'text', text: 5 }] }, { type: 'bogus', content: 'x' }, 5, {}]),
  reasoning_effort: (rng) => rng.pick<Json>(['high', 'bogus', 5, null]),
};

const completionFields: Record<string, FieldGen> = {
  ...commonFields,
  prompt: promptValue,
  suffix: (rng) => rng.pick<Json>(['', 'x', 5, null, [], {}, longString(rng), new BadBytes(badUtf8(rng)), new Raw('"\\ud800"')]),
  echo: (rng) => rng.pick<Json>([true, 'yes', 5, null]),
  max_tokens: maxTokensValue,
  n: (rng) => rng.pick<Json>([0, 2, -1, 1.5, '2', null]),
  best_of: (rng) => rng.pick<Json>([0, 2, -1, 1.5, '2', null]),
  logprobs: (rng) => rng.pick<Json>([5, -1, true, 'x']),
  presence_penalty: numberParam,
  frequency_penalty: numberParam,
};

const responsesFields: Record<string, FieldGen> = {
  ...commonFields,
  input: inputValue,
  instructions: (rng) => rng.pick<Json>([5, '', longString(rng), [], {}, new BadBytes(badUtf8(rng)), new Raw('"\\ud800"')]),
  tools: (rng) => toolsValue(rng, false),
  tool_choice: toolChoiceValue,
  max_output_tokens: maxTokensValue,
  text: textValue,
  previous_response_id: previousIdValue,
  store: (rng) => rng.pick<Json>(['yes', 1, null, {}, true, false]),
  background: (rng) => rng.pick<Json>([true, 'x', 1, null]),
  metadata: (rng) => rng.pick<Json>([{ k: 'v'.repeat(600) }, { ['k'.repeat(100)]: 'v' }, Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])), { k: 5 }, 5, [], 'x']),
  include: (rng) => rng.pick<Json>([['reasoning.encrypted_content', 5], ['bogus'], 'x', [null], {}]),
  reasoning: (rng) => rng.pick<Json>([{ effort: 'high' }, { effort: 5 }, { summary: 'auto', effort: 'bogus' }, 5, 'x', deep(rng, 50)]),
  truncation: (rng) => rng.pick<Json>(['auto', 'bogus', 5, {}]),
  parallel_tool_calls: (rng) => rng.pick<Json>(['x', 5, {}]),
  conversation: (rng) => rng.pick<Json>(['conv_x', { id: 'conv_x' }, 5]),
  prompt: (rng) => rng.pick<Json>([{ id: 'pmpt_x' }, { id: 'pmpt_x', variables: { a: deep(rng, 40) } }, 'x', 5]),
  generate: (rng) => rng.pick<Json>([false, 'x', 0, null]),
  context_management: (rng) => rng.pick<Json>([[{ type: 'compaction', compact_threshold: -1 }], 5, 'x']),
};

/** Which fields `mutate` may touch, per API. */
export const fieldGens = { chat: chatFields, completions: completionFields, responses: responsesFields } as const;

export type Api = keyof typeof fieldGens;

/** A small valid body: whatever the mutation leaves valid generates at most 4 tokens. */
export function baseBody(rng: Rng, api: Api): Record<string, Json> {
  const stream = rng.chance(0.4) ? { stream: true } : {};
  const tokens = rng.range(1, 4);
  if (api === 'chat') return { messages: [{ role: 'user', content: rng.pick(['hi', 'Write code.', 'ok']) }], max_tokens: tokens, ...stream };
  if (api === 'completions') return { prompt: rng.pick(['def f(', 'hi', '# x']), max_tokens: tokens, ...stream };
  return { input: rng.pick(['hi', 'Write code.', 'ok']), max_output_tokens: tokens, store: rng.chance(0.5), ...stream };
}

/** Replaces or adds 1 to 3 fields with hostile values; returns the body and what was changed. */
export function mutate(rng: Rng, api: Api, body: Record<string, Json>, knownIds: readonly string[]): { body: Json; changed: string[] } {
  const gens = fieldGens[api];
  const names = Object.keys(gens);
  const changed: string[] = [];
  const entries: Array<[string, Json]> = Object.entries(body);
  for (let i = rng.range(1, 3); i > 0; i--) {
    const name = rng.pick(names);
    const value = gens[name](rng, knownIds);
    changed.push(`${name}=${describe(value)}`);
    const at = entries.findIndex(([k]) => k === name);
    if (at === -1) entries.push([name, value]);
    else entries[at] = [name, value];
  }
  // Entries keeps `__proto__` and `constructor` as plain keys of the JSON text.
  return { body: new Entries(entries), changed };
}

/** A short description of a value for failure messages. */
export function describe(value: Json): string {
  if (value instanceof Raw) return value.text.length > 40 ? `raw(${value.text.slice(0, 24)}…${value.text.length}ch)` : `raw(${value.text})`;
  if (value instanceof BadBytes) return `badutf8(${value.bytes.toString('hex')})`;
  if (value instanceof Entries) return `entries(${value.entries.map(([k]) => (k instanceof Raw ? k.text : k)).join(',')})`;
  if (typeof value === 'string') return value.length > 40 ? `str(${value.length}ch:${JSON.stringify(value.slice(0, 12))})` : JSON.stringify(value);
  const text = toJsonText(value).text;
  return text.length > 60 ? `${text.slice(0, 48)}…(${text.length}ch)` : text;
}

// ---------------------------------------------------------------------------------------------
// HTTP cases.

export interface HttpCase {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
  /** What kind of hostile input this is, for the failure report. */
  readonly label: string;
}

const generationPaths: Record<Api, string> = { chat: '/v1/chat/completions', completions: '/v1/completions', responses: '/v1/responses' };

export const contentTypes: readonly string[] = [
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/json; charset="',
  'application/json, text/plain',
  'APPLICATION/JSON',
  'application/json;;;',
  'application/jsonx',
  'application/vnd.api+json',
  'application/octet-stream',
  '*/*',
  'json',
  '',
  ' ',
  'application/json\t',
];

export function jsonHeaders(rng: Rng): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (rng.chance(0.15)) headers.accept = rng.pick(['text/event-stream', '*/*', 'application/xml', '']);
  if (rng.chance(0.05)) headers['content-encoding'] = rng.pick(['gzip', 'br', 'deflate', 'identity', 'bogus']);
  if (rng.chance(0.05)) headers.authorization = rng.pick(['Bearer', 'Bearer x', 'Basic Zm9vOmJhcg==', 'x'.repeat(1000)]);
  if (rng.chance(0.05)) headers['x-request-id'] = rng.pick(['', 'x'.repeat(4000), '../']);
  return headers;
}

/** Paths and methods off the generation routes. */
function otherCase(rng: Rng, knownIds: readonly string[]): HttpCase {
  const id = rng.chance(0.3) && knownIds.length > 0 ? rng.pick(knownIds) : encodeURIComponent(String(rng.pick<Json>(['resp_nope', '', 'x'.repeat(2000), '..', '%', 'ü', '\u0000', 'resp_' + 'a'.repeat(60)])));
  const raw = rng.pick(['%ff', '%', '%zz', '%00', '%c0%80', '%ed%a0%80', '..%2f..%2f']);
  const query = rng.pick(['', '?limit=-1', '?limit=abc', '?limit=1e400', '?limit=100000', '?order=sideways', '?after=x&before=y', '?include[]=x', '?limit=%ff', '?a=1&a=2&a=3', `?${'x=1&'.repeat(2000)}`]);
  return rng.pick<() => HttpCase>([
    () => ({ method: rng.pick(['GET', 'DELETE']), path: `/v1/responses/${id}${query}`, headers: {}, label: `responses/:id ${rng.pick(['GET', 'DELETE'])}` }),
    () => ({ method: 'GET', path: `/v1/responses/${id}/input_items${query}`, headers: {}, label: 'input_items' }),
    () => ({ method: 'POST', path: `/v1/responses/${id}/cancel`, headers: { 'content-type': 'application/json' }, body: Buffer.from(rng.pick(['', '{}', '[]', 'x'])), label: 'cancel' }),
    () => ({ method: 'GET', path: `/v1/responses/${raw}`, headers: {}, label: `responses/${raw}` }),
    () => ({ method: 'GET', path: `/v1/models/${rng.chance(0.5) ? raw : id}`, headers: {}, label: 'models/:id' }),
    () => ({ method: 'GET', path: rng.pick(['/v1/models', '/metrics', '/ready', '/health', '/v1/health']) + rng.pick(['', '?x=%ff', '/', '?format=x']), headers: {}, label: 'info routes' }),
    () => ({ method: rng.pick(['PUT', 'PATCH', 'OPTIONS', 'HEAD', 'DELETE', 'GET']), path: rng.pick(['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/responses/compact']), headers: {}, label: 'wrong method' }),
    () => ({ method: 'GET', path: '/v1/responses', headers: rng.pick([{}, { upgrade: 'websocket' }, { upgrade: 'websocket', connection: 'upgrade' }, { upgrade: 'h2c', connection: 'upgrade' }]), label: 'GET /v1/responses (no handshake)' }),
    () => ({ method: 'POST', path: rng.pick(['/', '//v1/chat/completions', '/v1/chat/completions/', '/v1//responses', '/v1/chat/completions?x=%zz', '/V1/CHAT/COMPLETIONS', `/${raw}`, '/v1/responses/compact/', '/v1/../v1/completions', '/v1/chat/completions#x', `/${'a/'.repeat(500)}`]), headers: { 'content-type': 'application/json' }, body: Buffer.from('{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}'), label: 'odd path' }),
  ])();
}

/** One hostile HTTP request. */
export function httpCase(rng: Rng, knownIds: readonly string[]): HttpCase {
  const api = rng.pick<Api>(['chat', 'completions', 'responses']);
  const path = generationPaths[api];
  const kind = rng.weighted<string>([
    [40, 'mutate'],
    [8, 'truncated'],
    [5, 'random-bytes'],
    [6, 'invalid-utf8'],
    [7, 'deep'],
    [3, 'long-array'],
    [5, 'content-type'],
    [3, 'empty'],
    [4, 'duplicate-keys'],
    [4, 'odd-keys'],
    [3, 'compact'],
    [8, 'grammar'],
    [2, 'non-object'],
    [10, 'other-route'],
  ]);
  switch (kind) {
    case 'mutate': {
      const { body, changed } = mutate(rng, api, baseBody(rng, api), knownIds);
      return { method: 'POST', path, headers: jsonHeaders(rng), body: toBody(body), label: `${api} mutate[${changed.join('; ')}]` };
    }
    case 'truncated': {
      const full = toBody(rng.chance(0.5) ? baseBody(rng, api) : mutate(rng, api, baseBody(rng, api), knownIds).body);
      const cut = rng.int(full.length);
      return { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: full.subarray(0, cut), label: `${api} truncated at ${cut}/${full.length}` };
    }
    case 'random-bytes': {
      const junk = randomBytesBody(rng);
      return { method: 'POST', path, headers: { 'content-type': junk.contentType }, body: junk.body, label: `${api} random bytes (${junk.randomBytes})` };
    }
    case 'invalid-utf8': {
      const body = baseBody(rng, api);
      const bad = new BadBytes(badUtf8(rng));
      const field = api === 'chat' ? 'messages' : api === 'completions' ? 'prompt' : 'input';
      const value: Json = api === 'chat' ? [{ role: 'user', content: bad }] : bad;
      const keyBad = rng.chance(0.2);
      const entries: Array<[string | Raw, Json]> = Object.entries({ ...body, [field]: keyBad ? body[field] : value });
      if (keyBad) entries.push([new Raw(`"k\u0001BADKEY\u0001"`), 1]);
      let bytes = toBody(new Entries(entries));
      if (keyBad) bytes = Buffer.from(bytes.toString('latin1').replace('\u0001BADKEY\u0001', '\xff\xfe'), 'latin1');
      return { method: 'POST', path, headers: jsonHeaders(rng), body: bytes, label: `${api} invalid utf-8 ${keyBad ? 'in a key' : `in ${field}: ${bad.bytes.toString('hex')}`}` };
    }
    case 'deep': {
      const depth = depthFor(rng);
      const names = Object.keys(fieldGens[api]);
      const field = rng.pick(names);
      const body = { ...baseBody(rng, api), [field]: deep(rng, depth) };
      return { method: 'POST', path, headers: jsonHeaders(rng), body: toBody(body), label: `${api} deep ${field} (${depth})` };
    }
    case 'long-array': {
      const field = rng.pick(Object.keys(fieldGens[api]));
      const value = longArray(rng);
      return { method: 'POST', path, headers: jsonHeaders(rng), body: toBody({ ...baseBody(rng, api), [field]: value }), label: `${api} long array in ${field} (${value.text.length}ch)` };
    }
    case 'content-type': {
      const ct = rng.pick(contentTypes);
      const headers: Record<string, string> = ct === '' && rng.chance(0.5) ? {} : { 'content-type': ct };
      const body = rng.chance(0.3) ? Buffer.from('messages=hi&max_tokens=2') : toBody(baseBody(rng, api));
      return { method: 'POST', path, headers, body, label: `${api} content-type ${JSON.stringify(headers['content-type'] ?? null)}` };
    }
    case 'empty': {
      const headers = rng.pick<Record<string, string>>([{ 'content-type': 'application/json' }, {}, { 'content-type': 'application/json', 'content-length': '0' }, { 'content-type': 'text/plain' }]);
      const body = rng.pick([Buffer.alloc(0), Buffer.from(' '), Buffer.from('\n\r\n'), Buffer.from('\ufeff'), Buffer.from('null'), Buffer.from('""')]);
      return { method: 'POST', path, headers, body, label: `${api} empty-ish body ${JSON.stringify(body.toString())} ${JSON.stringify(headers)}` };
    }
    case 'duplicate-keys': {
      const base = baseBody(rng, api);
      const names = Object.keys(fieldGens[api]);
      const key = rng.chance(0.5) ? rng.pick(Object.keys(base)) : rng.pick(names);
      const entries: Array<[string, Json]> = Object.entries(base);
      const extra = fieldGens[api][key]?.(rng, knownIds) ?? hostileValue(rng);
      entries.splice(rng.int(entries.length + 1), 0, [key, extra]);
      if (rng.chance(0.5)) entries.push([key, base[key] ?? 1]);
      return { method: 'POST', path, headers: jsonHeaders(rng), body: toBody(new Entries(entries)), label: `${api} duplicate key ${key}=${describe(extra)}` };
    }
    case 'odd-keys': {
      const base = baseBody(rng, api);
      const key = rng.pick([
        '__proto__',
        'constructor',
        'prototype',
        'toString',
        'hasOwnProperty',
        'valueOf',
        '',
        '\u0000',
        'max_tokens\u0000',
        'ｍａｘ_tokens',
        'MAX_TOKENS',
        ' max_tokens',
        'messages ',
        '😀',
        'ключ',
        '\u202emax_tokens',
        'k'.repeat(100_000),
      ]);
      const raw = rng.chance(0.2) ? new Raw(rng.pick(['"\\ud800"', '"\\u0000"', '"a\\udc00b"'])) : key;
      const value = rng.chance(0.5) ? hostileValue(rng) : rng.pick<Json>([{ max_tokens: 100_000 }, 1e9, { stream: true }, null]);
      const entries: Array<[string | Raw, Json]> = Object.entries(base);
      entries.splice(rng.int(entries.length + 1), 0, [raw, value]);
      return { method: 'POST', path, headers: jsonHeaders(rng), body: toBody(new Entries(entries)), label: `${api} odd key ${describe(raw)}=${describe(value)}` };
    }
    case 'grammar': {
      // Valid apart from the schema or grammar, so it reaches the grammar compilers and the worker.
      const target: 'chat' | 'responses' = api === 'completions' ? rng.pick(['chat', 'responses'] as const) : api;
      const { extra, what } = grammarFields(rng, target);
      const body = { ...baseBody(rng, target), ...extra };
      return { method: 'POST', path: generationPaths[target], headers: jsonHeaders(rng), body: toBody(body), label: `${target} grammar ${what}: ${describe(body).slice(0, 400)}` };
    }
    case 'compact': {
      const { body, changed } = mutate(rng, 'responses', { input: [{ role: 'user', content: 'hi' }] }, knownIds);
      return { method: 'POST', path: '/v1/responses/compact', headers: jsonHeaders(rng), body: toBody(body), label: `compact mutate[${changed.join('; ')}]` };
    }
    case 'non-object': {
      const text = rng.pick(['[]', '[{}]', '5', '"x"', 'true', 'null', '-0', '1e400', '{}', '{"a":1}', '[' + toJsonText(baseBody(rng, api)).text + ']']);
      return { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: Buffer.from(text), label: `${api} non-object ${text.slice(0, 40)}` };
    }
    default:
      return otherCase(rng, knownIds);
  }
}

/** Tools with a hostile schema or grammar that the request forces (tool_choice), or a hostile structured-output schema. */
export function grammarFields(rng: Rng, api: 'chat' | 'responses'): { extra: Record<string, Json>; what: string } {
  const chat = api === 'chat';
  const strict = rng.pick([true, false, undefined]);
  const schema = rng.chance(0.15) ? nestedItemsSchema(rng.range(20, 62)) : hostileSchema(rng);
  const kind = rng.pick(['function', 'custom-regex', 'custom-lark', 'format']);
  if (kind === 'function') {
    const tool = chat ? { type: 'function', function: { name: 'f', parameters: schema, strict } } : { type: 'function', name: 'f', parameters: schema, strict };
    const choice = rng.pick<Json>(['required', 'auto', chat ? { type: 'function', function: { name: 'f' } } : { type: 'function', name: 'f' }]);
    return { extra: { tools: [tool], tool_choice: choice, parallel_tool_calls: rng.pick([true, false]) }, what: 'function parameters' };
  }
  if (kind === 'format') {
    if (chat) return { extra: { response_format: { type: 'json_schema', json_schema: { name: 'x', schema, strict } } }, what: 'response_format' };
    return { extra: { text: { format: { type: 'json_schema', name: 'x', schema, strict } } }, what: 'text.format' };
  }
  const syntax = kind === 'custom-regex' ? 'regex' : 'lark';
  const definition = syntax === 'regex' ? hostileRegex(rng) : hostileLark(rng);
  const tool = chat ? { type: 'custom', custom: { name: 'c', format: { type: 'grammar', grammar: { syntax, definition } } } } : { type: 'custom', name: 'c', format: { type: 'grammar', syntax, definition } };
  const choice = rng.pick<Json>(['required', 'auto', chat ? { type: 'custom', custom: { name: 'c' } } : { type: 'custom', name: 'c' }]);
  return { extra: { tools: [tool], tool_choice: choice }, what: `custom ${syntax}` };
}

/** Raw request bytes the HTTP client would refuse to send. */
export function rawHttpCase(rng: Rng): { bytes: Buffer; label: string } {
  const body = '{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}';
  const cases: Array<[string, string]> = [
    ['content-length and chunked', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`],
    ['bad chunk size', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${body}\r\n0\r\n\r\n`],
    ['chunked json', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\n{"m\r\n${(body.length - 3).toString(16)}\r\n${body.slice(3)}\r\n0\r\n\r\n`],
    ['two content-lengths', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: 3\r\n\r\n${body}`],
    ['negative content-length', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n${body}`],
    ['header without colon', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type application/json\r\n\r\n`],
    ['obs-fold header', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/\r\n json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`],
    ['NUL in header', `GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n`],
    ['garbage request line', `\u0000\u00ff GARBAGE\r\n\r\n`],
    ['HTTP/0.9', `GET /health\r\n\r\n`],
    ['HTTP/1.0 no host', `POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['absolute URI', `POST http://evil.example/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`],
    ['asterisk URI', `OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
    ['CONNECT', `CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n`],
    ['pipelined with garbage', `GET /health HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}GARBAGE\r\n\r\n`],
    ['websocket handshake without key', `GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`],
    ['websocket bad version', `GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n`],
    ['websocket bad key', `GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: !!\r\nSec-WebSocket-Version: 13\r\n\r\n`],
    ['websocket upgrade on POST route', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`],
    ['huge header', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`],
    ['many headers', `GET /health HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: v`).join('\r\n')}\r\n\r\n`],
    ['long URI', `GET /v1/responses/${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['expect 100-continue', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`],
    ['bad expect', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: bogus\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
    ['content-length larger than the body, then FIN', `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 50}\r\n\r\n${body}`],
  ];
  const [label, text] = rng.pick(cases);
  return { bytes: Buffer.from(text, 'latin1'), label: `raw: ${label}` };
}

// ---------------------------------------------------------------------------------------------
// WebSocket frames.

export interface WsFrame {
  readonly data: Buffer;
  readonly isBinary: boolean;
  readonly label: string;
  /** The close code the server must answer with: 1007 for text that is not UTF-8, 1009 for a frame over the server's limit. */
  readonly closesSocket?: 1007 | 1009;
  /** The `stream_id` the frame's events carry where it is not the tag (another lane's, or a long or odd one). */
  readonly streamId?: string;
}

/** `websocket.maxFrameBytes` of the default config. */
export const maxFrameBytes = 8 * 1024 * 1024;

/**
 * One hostile client frame; `tag` is put in `stream_id` where the frame is an object, to match the
 * replies. `lanes`: the `stream_id`s of the frames sent before it in its batch, which a frame may
 * join (queued behind them) or cancel.
 */
export function wsFrame(rng: Rng, tag: string, knownIds: readonly string[], lanes: readonly string[] = []): WsFrame {
  const frame = generateFrame(rng, tag, knownIds, lanes);
  const closesSocket = frame.data.length > maxFrameBytes ? 1009 : !frame.isBinary && !isUtf8(frame.data) ? 1007 : undefined;
  return { ...frame, closesSocket };
}

function generateFrame(rng: Rng, tag: string, knownIds: readonly string[], lanes: readonly string[]): WsFrame {
  const text = (value: Json, label: string): WsFrame => {
    const data = toBody(value);
    return { data, isBinary: false, label };
  };
  const kind = rng.weighted<string>([
    [6, 'binary'],
    [8, 'invalid-json'],
    [4, 'non-object'],
    [8, 'unknown-type'],
    [4, 'cancel'],
    [34, 'create'],
    [6, 'grammar'],
    [4, 'create-nested'],
    [5, 'deep'],
    [2, 'invalid-utf8'],
    [3, 'odd-stream-id'],
    [6, 'lane'],
    [3, 'lane-cancel'],
  ]);
  switch (kind) {
    case 'binary': {
      const n = rng.range(0, 2048);
      const bytes = rng.chance(0.3) ? Buffer.from(JSON.stringify({ type: 'response.create', input: 'hi', max_output_tokens: 1, stream_id: tag })) : rng.bytes(n);
      return { data: bytes, isBinary: true, label: `binary frame (${bytes.length} bytes)` };
    }
    case 'invalid-json': {
      const full = toJsonText({ type: 'response.create', input: 'hi', max_output_tokens: 1, stream_id: tag }).text;
      const value = rng.pick([full.slice(0, rng.int(full.length)), '', ' ', '{', '}', "{'type':'response.create'}", '{"type":"response.create",}', 'NaN', 'undefined', rng.bytes(rng.range(1, 200)).toString('latin1'), `${full}${full}`, `${full}x`]);
      return { data: Buffer.from(value, 'utf8'), isBinary: false, label: `invalid JSON text ${JSON.stringify(value.slice(0, 40))}` };
    }
    case 'non-object': {
      const value = rng.pick(['[]', '5', '"response.create"', 'null', 'true', '[{"type":"response.create"}]', '1e400']);
      return { data: Buffer.from(value), isBinary: false, label: `non-object frame ${value}` };
    }
    case 'unknown-type': {
      const type = rng.pick<Json>(['response.bogus', '', 'RESPONSE.CREATE', 'response.create ', 'response.steer', 'response.inject', 'session.update', 'response.processed', 5, null, {}, ['response.create'], '__proto__', 'constructor', 'toString', 'x'.repeat(100_000), new Raw('"\\ud800"')]);
      return text(new Entries([['type', type], ['stream_id', tag], ['input', 'hi']]), `unknown type ${describe(type)}`);
    }
    case 'cancel': {
      const id = rng.pick<Json>([undefined, 'resp_nope', 5, null, {}, ...knownIds.slice(-2)]);
      return text({ type: 'response.cancel', response_id: id, stream_id: tag }, `response.cancel ${describe(id ?? null)}`);
    }
    case 'create':
    case 'create-nested': {
      const { body, changed } = mutate(rng, 'responses', baseBody(rng, 'responses'), knownIds);
      const entries = [...(body as Entries).entries].filter(([k]) => k !== 'stream');
      if (kind === 'create') return text(new Entries([['type', 'response.create'], ['stream_id', tag], ...entries]), `response.create mutate[${changed.join('; ')}]`);
      return text({ type: 'response.create', stream_id: tag, response: new Entries(entries) }, `response.create nested mutate[${changed.join('; ')}]`);
    }
    case 'grammar': {
      const { extra, what } = grammarFields(rng, 'responses');
      const body = { ...baseBody(rng, 'responses'), ...extra, stream: undefined };
      return text({ type: 'response.create', stream_id: tag, ...body }, `response.create grammar ${what}: ${describe(body).slice(0, 400)}`);
    }
    case 'deep': {
      const depth = depthFor(rng);
      const field = rng.pick(['input', 'tools', 'tool_choice', 'text', 'metadata', 'response', 'reasoning', 'stream_id', 'type']);
      return text(new Entries([['type', 'response.create'], ['max_output_tokens', 1], ['stream_id', tag], [field, deep(rng, depth)]]), `deep ${field} (${depth})`);
    }
    case 'invalid-utf8': {
      const bytes = toBody({ type: 'response.create', input: new BadBytes(badUtf8(rng)), max_output_tokens: 1, stream_id: tag });
      return { data: bytes, isBinary: false, label: `invalid UTF-8 text frame ${bytes.toString('hex').slice(0, 80)}` };
    }
    case 'lane': {
      // A valid create on a lane that is not just the tag: one of the batch's (queued behind it), or an id at and past the 256-character bound.
      const streamId = rng.weighted<string>([
        [3, lanes.length > 0 ? rng.pick(lanes) : tag],
        [2, `${tag}.`.padEnd(256, 'x')],
        [1, `${tag}.`.padEnd(257, 'x')],
        [1, `${tag}.${'😀'.repeat(rng.range(1, 126))}`],
        [2, `${tag}/${rng.pick([' ', '\u0000', '"', '\\', '\u2028', '<|im_end|>', 'é', '\n'])}`],
      ]);
      const { body, changed } = rng.chance(0.3) ? mutate(rng, 'responses', baseBody(rng, 'responses'), knownIds) : { body: new Entries(Object.entries(baseBody(rng, 'responses'))), changed: [] };
      const entries = [...(body as Entries).entries].filter(([k]) => k !== 'stream');
      const isValid = streamId.length <= 256;
      const label = `response.create on lane ${describe(streamId)} (${streamId.length} chars)${changed.length > 0 ? ` mutate[${changed.join('; ')}]` : ''}`;
      return { ...text(new Entries([['type', 'response.create'], ['stream_id', streamId], ...entries]), label), streamId: isValid ? streamId : undefined };
    }
    case 'lane-cancel': {
      const streamId = lanes.length > 0 && rng.chance(0.8) ? rng.pick(lanes) : tag;
      const id = rng.pick<Json>([undefined, undefined, 'resp_nope', ...knownIds.slice(-1)]);
      return { ...text({ type: 'response.cancel', stream_id: streamId, response_id: id }, `response.cancel lane ${describe(streamId)} response_id ${describe(id ?? null)}`), streamId };
    }
    default: {
      const id = rng.pick<Json>([5, null, {}, [], '', 'x'.repeat(100_000), new Raw('"\\ud800"'), true]);
      // A lone surrogate is still a string of one character: a lane like any other.
      const streamId = id instanceof Raw ? (JSON.parse(id.text) as string) : undefined;
      return { ...text(new Entries([['type', 'response.create'], ['input', 'hi'], ['max_output_tokens', 1], ['stream_id', id]]), `odd stream_id ${describe(id)}`), streamId };
    }
  }
}

/** A body of random bytes (mostly small, now and then up to a megabyte; sometimes opening like JSON), mostly declared as JSON. */
export function randomBytesBody(rng: Rng): { contentType: string; body: Buffer; randomBytes: number } {
  const n = rng.weighted([
    [5, rng.range(1, 64)],
    [3, rng.range(64, 4096)],
    [1, rng.range(100_000, 1_000_000)],
  ]);
  const prefix = rng.chance(0.3) ? Buffer.from('{"') : Buffer.alloc(0);
  return { contentType: rng.chance(0.8) ? 'application/json' : rng.pick(contentTypes), body: Buffer.concat([prefix, rng.bytes(n)]), randomBytes: n };
}

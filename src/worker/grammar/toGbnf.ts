/**
 * Translates the grammar of an OpenAI custom tool (`format: {type: "grammar", syntax: "lark" | "regex",
 * definition}`) into llama.cpp GBNF, so generation can be constrained to text the tool accepts.
 *
 * Both translators are pure and total: anything outside the subset below yields `{ok: false, reason}`
 * naming the construct (with its Lark line or regex offset), never an exception, so the caller can decide
 * what to do with a grammar that cannot be enforced.
 *
 * Meaning. The GBNF accepts the language of the Lark grammar read as a context-free grammar over
 * characters, i.e. what Lark's Earley parser with its dynamic lexer accepts. Lexer-only behaviour
 * (terminal priorities, longest match) has no character-level equivalent and is ignored; `%ignore`
 * changes the language and is rejected.
 *
 * Lark subset:
 * - One statement per line. Rules `name: expansions` with `name` = `_?[a-z][_a-z0-9]*`, optionally
 *   prefixed by `?` and/or `!` and suffixed by a `.N` priority (both ignored: they shape the tree, not
 *   the language). Terminals `NAME: expansions` with `NAME` = `_?[A-Z][_A-Z0-9]*`, optional `.N` priority
 *   ignored. A line starting with `|` continues the previous definition; newlines inside `( )` and `[ ]`
 *   are whitespace. Comments `// ...`.
 * - Expansions: alternatives `a | b`, sequences, grouping `( )`, optional `[ ]` and `x?`, `x*`, `x+`,
 *   `x ~ n` and `x ~ n..m` (one operator per atom, as in Lark), `-> alias` (ignored: it names a tree node).
 * - Atoms: rule and terminal names; string literals `"..."` with Lark's escapes (`\\ \" \n \t \r \f \xHH
 *   \uHHHH \UHHHHHHHH`; any other `\c` stays backslash + `c`, as in Lark) and the `i` flag (expanded to
 *   per-character classes such as `[sS]`); literal ranges `"a".."z"` of single characters; regex literals
 *   `/.../` in the regex subset below, without flags and without anchors.
 * - `%import common.NAME`, `%import common.NAME -> ALIAS` and `%import common (NAME, ...)` for the terminals
 *   of Lark's common.lark: DIGIT HEXDIGIT INT SIGNED_INT DECIMAL FLOAT SIGNED_FLOAT NUMBER SIGNED_NUMBER
 *   ESCAPED_STRING LCASE_LETTER UCASE_LETTER LETTER WORD CNAME WS_INLINE WS CR LF NEWLINE SH_COMMENT
 *   CPP_COMMENT C_COMMENT SQL_COMMENT (ESCAPED_STRING and C_COMMENT are written without Lark's lookbehind
 *   and lazy `*?`, as the languages those denote).
 * - The entry rule is `start`, emitted as `root`; only definitions reachable from it are emitted.
 * - Rejected (ok: false): `%ignore` (GBNF cannot skip text between tokens), every other directive
 *   (`%declare`, `%override`, `%extend`, ...), imports from modules other than `common`, templates
 *   `name{...}`, regex flags `/.../i`, undefined or duplicate names, a terminal that uses a rule, a
 *   missing `start`, and left recursion (llama.cpp refuses it).
 *
 * Regex subset (syntax "regex" and Lark `/.../`), with Python `re` semantics as Lark uses them:
 * - Literal characters; escapes `\n \t \r \f \v \0 \xHH \uHHHH \u{H..} \UHHHHHHHH`; any escaped
 *   non-alphanumeric character is itself (`\\ \. \/ \*` ...); `\d` = `[0-9]`, `\w` = `[0-9A-Z_a-z]`,
 *   `\s` = `[\t\n\v\f\r ]` (ASCII, unlike Python's Unicode-aware classes) and their negations `\D \W \S`.
 * - `.` = any character except `\n` (GBNF `[^\n]`).
 * - Classes `[...]` and `[^...]` with ranges and the escapes above (`\b` is backspace there); a `]` right
 *   after `[` or `[^`, and a `-` first or last, are literal.
 * - Groups `( )` and `(?: )`, alternation `|`, quantifiers `* + ? {n} {n,} {n,m} {,m}` with an optional
 *   lazy `?` suffix (same language); a `{` that does not form a quantifier is literal. Bounds up to 10000.
 * - Anchors `^` at the start and `$` at the end of a top-level alternative, dropped because a GBNF grammar
 *   always spans the whole output (syntax "regex" only: in a Lark terminal they mean something else).
 * - Rejected (ok: false): backreferences (`\1`, `\k<n>`, `(?P=n)`), lookarounds, named groups, inline
 *   flags and every other `(?...)` group, `\b \B \A \z \Z \G`, Unicode property escapes `\p{..}`
 *   `\P{..}`, POSIX classes `[[:alpha:]]`, possessive quantifiers, nested quantifiers, octal escapes
 *   and unknown letter escapes.
 *
 * Output: one `name ::= expr` line per rule, `root` first. Lark names become GBNF names (`[a-zA-Z0-9-]+`)
 * by dropping leading `_` and replacing the others with `-`; clashes, including with `root`, get a `-2`,
 * `-3`, ... suffix. Repetitions of expressions that can match the empty string are rewritten without
 * that empty match (`(a*)*` becomes `a*`), because llama.cpp loops or reports left recursion on them.
 * A grammar whose `{m,n}` repetitions would expand to over 1,000,000 llama.cpp elements is rejected.
 */

/** Result: GBNF text whose start rule is `root`, or why it cannot be enforced. */
export type GbnfResult = { readonly ok: true; readonly gbnf: string } | { readonly ok: false; readonly reason: string };

/** Translates a Lark grammar (OpenAI custom tool, syntax "lark") into GBNF. */
export function larkToGbnf(definition: string): GbnfResult {
  return withoutNul(
    guarded(() => {
      if (typeof definition !== 'string') throw new Unsupported('the grammar definition is not a string');
      return translateLark(definition);
    }),
  );
}

/**
 * A grammar that spells out a NUL character is refused: no token's text holds one, and llama.cpp's
 * sampler fails (in a way that takes the worker down) when the grammar demands it.
 */
function withoutNul(result: GbnfResult): GbnfResult {
  if (result.ok && /\\x00|\\u0000|\\U00000000|\u0000/.test(result.gbnf)) return { ok: false, reason: 'the grammar requires a NUL character, which no token can produce' };
  return result;
}

/** Translates a regular expression (OpenAI custom tool, syntax "regex") into GBNF matching the whole text. */
export function regexToGbnf(pattern: string): GbnfResult {
  return withoutNul(
    guarded(() => {
      if (typeof pattern !== 'string') throw new Unsupported('the regex is not a string');
      const emitter = new Emitter(new Map(), new Map());
      return emitter.render([{ name: 'root', body: parseRegex(pattern, true, 'regex') }]);
    }),
  );
}

/** A construct the translators cannot enforce; caught at the API boundary so callers never see it thrown. */
class Unsupported extends Error {}

function guarded(translate: () => string): GbnfResult {
  try {
    return { ok: true, gbnf: translate() };
  } catch (error) {
    // Anything else (a stack overflow on absurd nesting, a bug) still must not escape to the caller.
    const reason = error instanceof Unsupported ? error.message : `cannot translate the grammar: ${error instanceof Error ? error.message : String(error)}`;
    return { ok: false, reason };
  }
}

// ---------------------------------------------------------------------------------------------------
// Intermediate AST shared by both front ends; classes are sets of Unicode code point ranges.

type Range = readonly [lo: number, hi: number];
type Expr =
  | { readonly k: 'lit'; readonly s: string }
  | { readonly k: 'cls'; readonly neg: boolean; readonly r: readonly Range[] }
  | { readonly k: 'seq'; readonly xs: readonly Expr[] }
  | { readonly k: 'alt'; readonly xs: readonly Expr[] }
  | { readonly k: 'rep'; readonly x: Expr; readonly min: number; readonly max: number | null }
  | { readonly k: 'ref'; readonly name: string; readonly line: number };

const MAX_CP = 0x10ffff;
const MAX_REPEAT = 10000;
const MAX_EXPANDED_SIZE = 1_000_000;
const EMPTY: Expr = { k: 'lit', s: '' };
const lit = (s: string): Expr => ({ k: 'lit', s });
const cls = (r: readonly Range[], neg = false): Expr => ({ k: 'cls', neg, r });
const seq = (xs: readonly Expr[]): Expr => (xs.length === 1 ? xs[0] : { k: 'seq', xs });
const alt = (xs: readonly Expr[]): Expr => (xs.length === 1 ? xs[0] : { k: 'alt', xs });
const rep = (x: Expr, min: number, max: number | null): Expr => ({ k: 'rep', x, min, max });

const DIGITS: readonly Range[] = [[0x30, 0x39]];
const WORD_CHARS: readonly Range[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACES: readonly Range[] = [[0x09, 0x0d], [0x20, 0x20]];

/** Sorted, merged copy (adjacent ranges join), so class output is canonical. */
function normalize(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of normalize(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Regex front end.

type EscapeValue = { readonly cp: number } | { readonly set: readonly Range[] };

/** Parses `pattern` in the regex subset; `where` prefixes error messages. */
function parseRegex(pattern: string, allowAnchors: boolean, where: string): Expr {
  const cps = Array.from(pattern, (c) => c.codePointAt(0)!);
  let i = 0;
  const fail = (what: string, at = i): never => {
    throw new Unsupported(`${where}: ${what} (at offset ${at})`);
  };
  const ch = (at = i): string => (at < cps.length ? String.fromCodePoint(cps[at]) : '');
  const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);

  const hex = (count: number, start: number): number => {
    let text = '';
    for (let n = 0; n < count; n++) {
      if (!isHex(ch())) fail(`expected ${count} hex digits in escape`, start);
      text += ch();
      i++;
    }
    return codePoint(parseInt(text, 16), start);
  };
  const codePoint = (value: number, start: number): number => (value > MAX_CP ? fail('escape beyond U+10FFFF', start) : value);

  /** After a `\`: one character or a class; `inClass` is where `\b` means backspace. */
  const escape = (inClass: boolean): EscapeValue => {
    const start = i - 1;
    if (i >= cps.length) fail('pattern ends with a backslash', start);
    const c = ch();
    i++;
    switch (c) {
      case 'd': return { set: DIGITS };
      case 'D': return { set: complement(DIGITS) };
      case 'w': return { set: WORD_CHARS };
      case 'W': return { set: complement(WORD_CHARS) };
      case 's': return { set: SPACES };
      case 'S': return { set: complement(SPACES) };
      case 'n': return { cp: 0x0a };
      case 't': return { cp: 0x09 };
      case 'r': return { cp: 0x0d };
      case 'f': return { cp: 0x0c };
      case 'v': return { cp: 0x0b };
      case 'a': return { cp: 0x07 };
      case '0':
        if (/^[0-7]$/.test(ch())) fail('octal escape', start);
        return { cp: 0 };
      case 'x': return { cp: hex(2, start) };
      case 'U': return { cp: hex(8, start) };
      case 'u': {
        if (ch() !== '{') return { cp: hex(4, start) };
        i++;
        let text = '';
        while (isHex(ch())) text += ch(i++);
        if (ch() !== '}' || text === '' || text.length > 8) fail('malformed `\\u{...}` escape', start);
        i++;
        return { cp: codePoint(parseInt(text, 16), start) };
      }
      case 'b':
        if (inClass) return { cp: 0x08 };
        return fail('word boundary `\\b` is not supported', start);
      case 'p':
      case 'P': return fail(`Unicode property escape \`\\${c}\` is not supported`, start);
      case 'k': return fail('backreference `\\k<...>` is not supported', start);
      default:
        if (/^[1-9]$/.test(c)) fail(`backreference \`\\${c}\` is not supported`, start);
        if (/^[A-Za-z0-9]$/.test(c)) fail(`escape \`\\${c}\` is not supported (assertion, anchor or unknown escape)`, start);
        return { cp: cps[i - 1] };
    }
  };

  const charClass = (): Expr => {
    const start = i - 1;
    const negated = ch() === '^';
    if (negated) i++;
    const ranges: Range[] = [];
    let first = true;
    for (;;) {
      if (i >= cps.length) fail('unterminated character class', start);
      if (ch() === ']' && !first) break;
      first = false;
      if (ch() === '[' && ch(i + 1) === ':') fail('POSIX character class `[:...:]` is not supported');
      const itemAt = i;
      const lo = classItem();
      if (ch() === '-' && ch(i + 1) !== ']' && i + 1 < cps.length) {
        i++;
        const hi = classItem();
        if (!('cp' in lo) || !('cp' in hi)) fail('bad character range (a class escape cannot bound a range)', itemAt);
        else if (lo.cp > hi.cp) fail('bad character range (start after end)', itemAt);
        else ranges.push([lo.cp, hi.cp]);
      } else if ('cp' in lo) ranges.push([lo.cp, lo.cp]);
      else ranges.push(...lo.set);
    }
    i++;
    return cls(normalize(ranges), negated);
  };
  const classItem = (): EscapeValue => {
    const c = cps[i++];
    return c === 0x5c ? escape(true) : { cp: c };
  };

  /** Parses `{n}`, `{n,}`, `{n,m}`, `{,m}`, `{,}` at `i`; undefined (and `i` unchanged) when it is a literal `{`. */
  const braces = (): { min: number; max: number | null } | undefined => {
    const m = /^\{(\d*)(?:(,)(\d*))?\}/.exec(pattern.slice(offsetOf(i)));
    if (!m || (m[1] === '' && m[2] === undefined)) return undefined;
    const start = i;
    i += m[0].length;
    const min = m[1] === '' ? 0 : Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? null : Number(m[3]);
    if (min > MAX_REPEAT || (max !== null && max > MAX_REPEAT)) fail(`repetition bound above ${MAX_REPEAT}`, start);
    if (max !== null && min > max) fail('repetition bounds out of order', start);
    return { min, max };
  };
  // Braces are matched on the string, so map a code point index back to a UTF-16 offset.
  const offsetOf = (at: number): number => {
    let offset = 0;
    for (let n = 0; n < at; n++) offset += cps[n] > 0xffff ? 2 : 1;
    return offset;
  };
  const quantifier = (): { min: number; max: number | null } | undefined => {
    const c = ch();
    if (c === '*' || c === '+' || c === '?') {
      i++;
      return { min: c === '+' ? 1 : 0, max: c === '?' ? 1 : null };
    }
    return c === '{' ? braces() : undefined;
  };

  const atom = (depth: number): Expr => {
    const start = i;
    const c = ch();
    i++;
    switch (c) {
      case '(': {
        if (ch() === '?') {
          const rest = pattern.slice(offsetOf(i));
          if (rest.startsWith('?:')) i += 2;
          else if (rest.startsWith('?=') || rest.startsWith('?!')) fail(`lookahead \`(${rest.slice(0, 2)}\` is not supported`, start);
          else if (rest.startsWith('?<=') || rest.startsWith('?<!')) fail(`lookbehind \`(${rest.slice(0, 3)}\` is not supported`, start);
          else if (rest.startsWith('?P=')) fail('backreference `(?P=...)` is not supported', start);
          else if (rest.startsWith('?P<') || rest.startsWith('?<') || rest.startsWith("?'")) fail('named group is not supported', start);
          else fail(`group \`(${rest.slice(0, 2)}\` (inline flags, atomic, conditional or comment group) is not supported`, start);
        }
        const inner = alternation(depth + 1);
        if (ch() !== ')') fail('missing `)`', start);
        i++;
        return inner;
      }
      case '[': return charClass();
      case '.': return cls([[0x0a, 0x0a]], true);
      case '\\': {
        const value = escape(false);
        return 'cp' in value ? lit(String.fromCodePoint(value.cp)) : cls(value.set);
      }
      case '*':
      case '+':
      case '?': return fail(`nothing to repeat before \`${c}\``, start);
      case '{':
        i = start;
        if (braces()) fail('nothing to repeat before `{`', start);
        i = start + 1;
        return lit('{');
      default: return lit(c);
    }
  };

  const sequence = (depth: number): Expr => {
    const items: Expr[] = [];
    while (i < cps.length && ch() !== '|' && ch() !== ')') {
      const c = ch();
      if (c === '^' || c === '$') {
        const edge = c === '^' ? 'at the start' : 'at the end';
        if (!allowAnchors) fail(`anchor \`${c}\` is not supported in a Lark regex terminal`);
        const atEdge = depth === 0 && (c === '^' ? items.length === 0 : i + 1 === cps.length || ch(i + 1) === '|');
        if (!atEdge) fail(`anchor \`${c}\` is only supported ${edge} of the pattern`);
        i++;
        continue;
      }
      let item = atom(depth);
      const start = i;
      const q = quantifier();
      if (q) {
        if (ch() === '?') i++; // lazy: same set of matches
        else if (ch() === '+') fail('possessive quantifier is not supported', i);
        if (quantifier()) fail('nested quantifier (repeat of a repeat) is not supported', start);
        item = rep(item, q.min, q.max);
      }
      items.push(item);
    }
    return items.length === 0 ? EMPTY : seq(items);
  };

  const alternation = (depth: number): Expr => {
    const options = [sequence(depth)];
    while (ch() === '|') {
      i++;
      options.push(sequence(depth));
    }
    return alt(options);
  };

  const result = alternation(0);
  if (i < cps.length) fail('unbalanced `)`');
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Lark front end.

type Token =
  | { readonly t: 'name'; readonly v: string; readonly line: number }
  | { readonly t: 'str'; readonly v: string; readonly ci: boolean; readonly line: number }
  | { readonly t: 're'; readonly v: string; readonly line: number }
  | { readonly t: 'num'; readonly v: number; readonly line: number }
  | { readonly t: 'op'; readonly v: string; readonly line: number }
  | { readonly t: 'dir'; readonly v: string; readonly line: number }
  | { readonly t: 'nl'; readonly line: number }
  | { readonly t: 'eof'; readonly line: number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let depth = 0;
  let i = 0;
  const fail = (what: string): never => {
    throw new Unsupported(`line ${line}: ${what}`);
  };
  while (i < src.length) {
    const c = src[i];
    if (c === '\n') {
      // Inside brackets a newline is whitespace; at top level it ends a statement.
      if (depth === 0) out.push({ t: 'nl', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f') i++;
    else if (src.startsWith('//', i)) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\n') fail('newline inside a string literal');
        j += src[j] === '\\' ? 2 : 1;
      }
      if (j >= src.length) fail('unterminated string literal');
      const value = larkString(src.slice(i + 1, j), line);
      const ci = src[j + 1] === 'i' && !/[A-Za-z0-9_]/.test(src[j + 2] ?? '');
      out.push({ t: 'str', v: value, ci, line });
      i = j + (ci ? 2 : 1);
    } else if (c === '/') {
      let j = i + 1;
      while (j < src.length && src[j] !== '/') {
        if (src[j] === '\n') fail('newline inside a regex literal');
        j += src[j] === '\\' ? 2 : 1;
      }
      if (j >= src.length) fail('unterminated regex literal');
      const body = src.slice(i + 1, j);
      const flags = /^[A-Za-z]*/.exec(src.slice(j + 1))![0];
      if (flags) fail(`regex flags \`${flags}\` on /${body}/ are not supported`);
      out.push({ t: 're', v: body, line });
      i = j + 1;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^-?[0-9]+/.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[0]), line });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'name', v: m[0], line });
      i += m[0].length;
    } else if (c === '%') {
      const m = /^%[A-Za-z_]*/.exec(src.slice(i))!;
      out.push({ t: 'dir', v: m[0], line });
      i += m[0].length;
    } else if (src.startsWith('->', i) || src.startsWith('..', i)) {
      out.push({ t: 'op', v: src.slice(i, i + 2), line });
      i += 2;
    } else if (':|()[]?*+~!{},.'.includes(c)) {
      if (c === '(' || c === '[') depth++;
      if ((c === ')' || c === ']') && depth > 0) depth--;
      out.push({ t: 'op', v: c, line });
      i++;
    } else fail(`unexpected character \`${c}\``);
  }
  out.push({ t: 'eof', line });
  // A newline followed by `|` continues the definition (Lark's `_VBAR: _NL? "|"`), and blank lines collapse.
  return out.filter((token, n) => token.t !== 'nl' || (out[n + 1].t !== 'nl' && !(out[n + 1].t === 'op' && (out[n + 1] as { v: string }).v === '|')));
}

/** The value of a Lark string literal body, with the escapes Lark evaluates (via Python) and the rest kept verbatim. */
function larkString(body: string, line: number): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    if (body[i] !== '\\') {
      out += body[i];
      continue;
    }
    const c = body[++i];
    const hexEscape = (count: number): void => {
      const digits = body.slice(i + 1, i + 1 + count);
      if (!new RegExp(`^[0-9a-fA-F]{${count}}$`).test(digits) || parseInt(digits, 16) > MAX_CP) {
        throw new Unsupported(`line ${line}: malformed \`\\${c}\` escape in a string literal`);
      }
      out += String.fromCodePoint(parseInt(digits, 16));
      i += count;
    };
    if (c === '\\' || c === '"') out += c;
    else if (c === 'n') out += '\n';
    else if (c === 't') out += '\t';
    else if (c === 'r') out += '\r';
    else if (c === 'f') out += '\f';
    else if (c === 'x') hexEscape(2);
    else if (c === 'u') hexEscape(4);
    else if (c === 'U') hexEscape(8);
    else out += '\\' + c;
  }
  return out;
}

interface Definition {
  readonly key: string;
  readonly terminal: boolean;
  readonly body: Expr;
  readonly line: number;
}

interface ParsedLark {
  readonly defs: Map<string, Definition>;
  /** Local name -> common.lark terminal it was imported from. */
  readonly imports: Map<string, string>;
}

const TERMINAL_NAME = /^_?[A-Z][_A-Z0-9]*$/;
const RULE_NAME = /^_?[a-z][_a-z0-9]*$/;

function parseLark(src: string, allowImports: boolean): ParsedLark {
  const tokens = tokenize(src);
  const defs = new Map<string, Definition>();
  const imports = new Map<string, string>();
  let p = 0;
  const peek = (): Token => tokens[p];
  const isOp = (v: string): boolean => {
    const token = tokens[p];
    return token.t === 'op' && token.v === v;
  };
  const fail = (what: string, token: Token = peek()): never => {
    throw new Unsupported(`line ${token.line}: ${what}`);
  };
  const describe = (token: Token): string => (token.t === 'eof' ? 'end of grammar' : token.t === 'nl' ? 'end of line' : `\`${String(token.v)}\``);
  const expectOp = (v: string, what: string): void => {
    if (!isOp(v)) fail(`expected \`${v}\` ${what}, found ${describe(peek())}`);
    p++;
  };
  const endOfStatement = (): void => {
    const token = peek();
    if (token.t !== 'nl' && token.t !== 'eof') fail(`unexpected ${describe(token)}`);
    if (token.t === 'nl') p++;
  };
  const define = (key: string, terminal: boolean, body: Expr, line: number): void => {
    if (defs.has(key)) fail(`\`${key}\` is defined more than once`);
    defs.set(key, { key, terminal, body, line });
  };

  const expansions = (): Expr => {
    const options = [aliased()];
    while (isOp('|')) {
      p++;
      options.push(aliased());
    }
    return alt(options);
  };
  const aliased = (): Expr => {
    const body = expansion();
    if (isOp('->')) {
      p++;
      if (peek().t !== 'name') fail('expected an alias name after `->`');
      p++;
    }
    return body;
  };
  const expansion = (): Expr => {
    const items: Expr[] = [];
    for (;;) {
      const token = peek();
      if (token.t === 'nl' || token.t === 'eof' || (token.t === 'op' && ['|', ')', ']', '->'].includes(token.v))) break;
      items.push(expr());
    }
    return items.length === 0 ? EMPTY : seq(items);
  };
  const expr = (): Expr => {
    const item = atom();
    const token = peek();
    if (token.t !== 'op') return item;
    if (token.v === '?' || token.v === '*' || token.v === '+') {
      p++;
      return rep(item, token.v === '+' ? 1 : 0, token.v === '?' ? 1 : null);
    }
    if (token.v !== '~') return item;
    p++;
    const count = (): number => {
      const n = peek();
      if (n.t !== 'num' || n.v < 0) return fail('expected a count after `~`');
      if (n.v > MAX_REPEAT) fail(`repetition bound above ${MAX_REPEAT}`);
      p++;
      return n.v;
    };
    const min = count();
    let max = min;
    if (isOp('..')) {
      p++;
      max = count();
    }
    if (min > max) fail('repetition bounds out of order in `~`');
    return rep(item, min, max);
  };
  const atom = (): Expr => {
    const token = peek();
    p++;
    if (token.t === 'op' && (token.v === '(' || token.v === '[')) {
      const inner = expansions();
      expectOp(token.v === '(' ? ')' : ']', `to close the \`${token.v}\``);
      return token.v === '(' ? inner : rep(inner, 0, 1);
    }
    if (token.t === 'str') {
      if (!isOp('..')) return token.ci ? caseless(token.v) : lit(token.v);
      p++;
      const end = peek();
      p++;
      const single = (s: string): boolean => Array.from(s).length === 1;
      if (end.t !== 'str' || !single(token.v) || !single(end.v) || token.ci || end.ci) return fail('a literal range `"a".."z"` needs two single-character strings', token);
      const [lo, hi] = [token.v.codePointAt(0)!, end.v.codePointAt(0)!];
      if (lo > hi) fail('literal range out of order', token);
      return cls([[lo, hi]]);
    }
    if (token.t === 're') return parseRegex(token.v, false, `line ${token.line}: in /${token.v}/`);
    if (token.t === 'name') {
      if (isOp('{')) fail(`template \`${token.v}{...}\` is not supported`, token);
      if (!TERMINAL_NAME.test(token.v) && !RULE_NAME.test(token.v)) fail(`invalid name \`${token.v}\` (rules are lowercase, terminals uppercase)`, token);
      return { k: 'ref', name: token.v, line: token.line };
    }
    return fail(`unexpected ${describe(token)}`, token);
  };

  const importStatement = (line: number): void => {
    const module = peek();
    if (module.t !== 'name' || module.v !== 'common' || !allowImports) fail(`only \`%import common.NAME\` is supported`, module);
    p++;
    const importOne = (name: string, alias: string): void => {
      if (!COMMON_NAMES.has(name)) fail(`\`common\` has no terminal \`${name}\``);
      if (!TERMINAL_NAME.test(alias)) fail(`cannot import terminal \`${name}\` as \`${alias}\``);
      // Dependencies of common terminals are looked up later, under `common.` keys no Lark name can take.
      define(alias, true, renameRefs(commonLibrary().defs.get(name)!.body, (n) => `common.${n}`), line);
      imports.set(alias, name);
    };
    if (isOp('.')) {
      p++;
      const name = peek();
      if (name.t !== 'name') fail('expected a terminal name after `%import common.`');
      p++;
      if (isOp('.')) fail('only `%import common.NAME` is supported (no sub-modules)');
      let alias = (name as { v: string }).v;
      if (isOp('->')) {
        p++;
        const aliasToken = peek();
        if (aliasToken.t !== 'name') fail('expected a name after `->`');
        alias = (aliasToken as { v: string }).v;
        p++;
      }
      importOne((name as { v: string }).v, alias);
    } else if (isOp('(')) {
      p++;
      for (;;) {
        const name = peek();
        if (name.t !== 'name') fail('expected a terminal name in `%import common (...)`');
        p++;
        importOne((name as { v: string }).v, (name as { v: string }).v);
        if (isOp(',')) p++;
        else break;
      }
      expectOp(')', 'to close `%import common (...)`');
    } else fail('expected `.NAME` or `(NAME, ...)` after `%import common`');
    endOfStatement();
  };

  while (peek().t !== 'eof') {
    const token = peek();
    if (token.t === 'nl') {
      p++;
      continue;
    }
    if (token.t === 'dir') {
      p++;
      if (token.v === '%import') importStatement(token.line);
      else if (token.v === '%ignore') fail('`%ignore` is not supported: GBNF cannot skip ignored text between tokens, so the grammar cannot be enforced faithfully', token);
      else fail(`directive \`${token.v}\` is not supported`, token);
      continue;
    }
    while (isOp('?') || isOp('!')) p++; // tree-shaping modifiers only
    const name = peek();
    if (name.t !== 'name') fail(`expected a rule or terminal definition, found ${describe(name)}`);
    p++;
    const key = (name as { v: string }).v;
    if (isOp('{')) fail(`template \`${key}{...}\` is not supported`, name);
    const terminal = TERMINAL_NAME.test(key);
    if (!terminal && !RULE_NAME.test(key)) fail(`invalid name \`${key}\` (rules are lowercase, terminals uppercase)`, name);
    if (isOp('.')) {
      p++;
      if (peek().t !== 'num') fail('expected a number after `.` (priority)');
      p++;
    }
    expectOp(':', `after \`${key}\``);
    const body = expansions();
    define(key, terminal, body, name.line);
    endOfStatement();
  }
  return { defs, imports };
}

/** Lark's common.lark, restricted to terminals with an exact character-level meaning. */
const COMMON_LARK = String.raw`
DIGIT: "0".."9"
HEXDIGIT: "a".."f"|"A".."F"|DIGIT
INT: DIGIT+
SIGNED_INT: ["+"|"-"] INT
DECIMAL: INT "." INT? | "." INT
_EXP: ("e"|"E") SIGNED_INT
FLOAT: INT _EXP | DECIMAL _EXP?
SIGNED_FLOAT: ["+"|"-"] FLOAT
NUMBER: FLOAT | INT
SIGNED_NUMBER: ["+"|"-"] NUMBER
// Lark: "\"" /.*?/ /(?<!\\)(\\\\)*?/ "\"", i.e. up to the first quote not escaped by a backslash.
ESCAPED_STRING: "\"" (/[^"\\\n]/ | "\\" /./)* "\""
LCASE_LETTER: "a".."z"
UCASE_LETTER: "A".."Z"
LETTER: UCASE_LETTER | LCASE_LETTER
WORD: LETTER+
CNAME: ("_"|LETTER) ("_"|LETTER|DIGIT)*
WS_INLINE: (" "|/\t/)+
WS: /[ \t\f\r\n]/+
CR: /\r/
LF: /\n/
NEWLINE: (CR? LF)+
SH_COMMENT: /#[^\n]*/
CPP_COMMENT: /\/\/[^\n]*/
// Lark: "/*" /(.|\n)*?/ "*/", i.e. up to the first "*/".
C_COMMENT: /\/\*([^*]|\*+[^*\/])*\*+\//
SQL_COMMENT: /--[^\n]*/
`;
let common: ParsedLark | undefined;
function commonLibrary(): ParsedLark {
  common ??= parseLark(COMMON_LARK, false);
  return common;
}
const COMMON_NAMES = new Set(['DIGIT', 'HEXDIGIT', 'INT', 'SIGNED_INT', 'DECIMAL', 'FLOAT', 'SIGNED_FLOAT', 'NUMBER', 'SIGNED_NUMBER', 'ESCAPED_STRING', 'LCASE_LETTER', 'UCASE_LETTER', 'LETTER', 'WORD', 'CNAME', 'WS_INLINE', 'WS', 'CR', 'LF', 'NEWLINE', 'SH_COMMENT', 'CPP_COMMENT', 'C_COMMENT', 'SQL_COMMENT']);

function renameRefs(e: Expr, rename: (name: string) => string): Expr {
  switch (e.k) {
    case 'ref': return { ...e, name: rename(e.name) };
    case 'seq':
    case 'alt': return { k: e.k, xs: e.xs.map((x) => renameRefs(x, rename)) };
    case 'rep': return { ...e, x: renameRefs(e.x, rename) };
    default: return e;
  }
}

function refsOf(e: Expr, out: Array<Extract<Expr, { k: 'ref' }>> = []): Array<Extract<Expr, { k: 'ref' }>> {
  if (e.k === 'ref') out.push(e);
  else if (e.k === 'seq' || e.k === 'alt') for (const x of e.xs) refsOf(x, out);
  else if (e.k === 'rep') refsOf(e.x, out);
  return out;
}

/** Expression that matches the literal `s` case-insensitively, as Lark's `"..."i` does. */
function caseless(s: string): Expr {
  return seq(
    Array.from(s, (c) => {
      const variants = new Set([c, c.toLowerCase(), c.toUpperCase()].filter((v) => Array.from(v).length === 1));
      return variants.size === 1 ? lit(c) : cls(normalize([...variants].map((v) => [v.codePointAt(0)!, v.codePointAt(0)!] as const)));
    }),
  );
}

function translateLark(src: string): string {
  const { defs, imports } = parseLark(src, true);
  const lib = commonLibrary().defs;
  // A dependency of an imported common terminal is the user's own import when that import kept its name
  // (Lark forbids redefining it, so both mean the same); otherwise it gets its own copy.
  const resolve = (name: string): string => {
    if (!name.startsWith('common.')) return name;
    const bare = name.slice('common.'.length);
    if (imports.get(bare) === bare) return bare;
    if (!defs.has(name)) {
      defs.set(name, { key: name, terminal: true, body: renameRefs(lib.get(bare)!.body, (n) => `common.${n}`), line: 0 });
    }
    return name;
  };
  const resolved = new Map<string, Definition>();
  const pending = [...defs.values()];
  while (pending.length > 0) {
    const def = pending.shift()!;
    const body = renameRefs(def.body, resolve);
    for (const ref of refsOf(body)) {
      const target = defs.get(ref.name);
      const where = def.line > 0 ? `line ${ref.line}: ` : '';
      if (!target) {
        throw new Unsupported(`${where}\`${ref.name}\` is used but not defined${TERMINAL_NAME.test(ref.name) && COMMON_NAMES.has(ref.name) ? ` (missing \`%import common.${ref.name}\`?)` : ''}`);
      }
      if (def.terminal && !target.terminal) throw new Unsupported(`${where}terminal \`${def.key}\` uses rule \`${ref.name}\` (Lark terminals may only use terminals)`);
      if (!resolved.has(ref.name) && !pending.includes(target)) pending.push(target);
    }
    resolved.set(def.key, { ...def, body });
  }
  if (!resolved.has('start')) throw new Unsupported('the grammar has no `start` rule');

  // Only what `start` reaches is emitted, `start` first.
  const reachable = new Set<string>(['start']);
  const stack = ['start'];
  while (stack.length > 0) {
    for (const ref of refsOf(resolved.get(stack.pop()!)!.body)) {
      if (!reachable.has(ref.name)) {
        reachable.add(ref.name);
        stack.push(ref.name);
      }
    }
  }
  // `resolved` holds the definitions as written, then the common copies they pulled in.
  const ordered = [resolved.get('start')!, ...[...resolved.values()].filter((d) => d.key !== 'start' && reachable.has(d.key))];

  const nullable = nullableRules(ordered);
  rejectLeftRecursion(ordered, nullable);

  const names = new Map<string, string>([['start', 'root']]);
  const taken = new Set(['root']);
  const baseOf = (key: string): string => key.replace(/^common\./, '').replace(/^_+/, '').replace(/_/g, '-');
  // Names without a leading `_` go first, so `_item` rather than `item` gets the suffix when both exist.
  const byPreference = ordered.filter((d) => d.key !== 'start').sort((a, b) => Number(/^(_|common\.)/.test(a.key)) - Number(/^(_|common\.)/.test(b.key)));
  for (const def of byPreference) names.set(def.key, allocate(baseOf(def.key), taken));

  const emitter = new Emitter(names, nullable, taken, new Map(ordered.map((d) => [d.key, d])));
  return emitter.render(ordered.map((d) => ({ name: names.get(d.key)!, body: d.body })));
}

function allocate(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  taken.add(name);
  return name;
}

function nullableExpr(e: Expr, rules: ReadonlyMap<string, boolean>): boolean {
  switch (e.k) {
    case 'lit': return e.s === '';
    case 'cls': return false;
    case 'seq': return e.xs.every((x) => nullableExpr(x, rules));
    case 'alt': return e.xs.some((x) => nullableExpr(x, rules));
    case 'rep': return e.min === 0 || nullableExpr(e.x, rules);
    case 'ref': return rules.get(e.name) ?? false;
  }
}

/** Which rules can match the empty string (least fixed point). */
function nullableRules(defs: readonly Definition[]): Map<string, boolean> {
  const result = new Map(defs.map((d) => [d.key, false]));
  for (let changed = true; changed; ) {
    changed = false;
    for (const def of defs) {
      if (!result.get(def.key) && nullableExpr(def.body, result)) {
        result.set(def.key, true);
        changed = true;
      }
    }
  }
  return result;
}

/** Rules `e` can start with (through a prefix that may match nothing). */
function leftRefs(e: Expr, nullable: ReadonlyMap<string, boolean>, out: Set<string>): void {
  switch (e.k) {
    case 'ref': out.add(e.name); break;
    case 'alt': for (const x of e.xs) leftRefs(x, nullable, out); break;
    case 'rep': if (e.max !== 0) leftRefs(e.x, nullable, out); break;
    case 'seq':
      for (const x of e.xs) {
        leftRefs(x, nullable, out);
        if (!nullableExpr(x, nullable)) break;
      }
      break;
    default: break;
  }
}

function rejectLeftRecursion(defs: readonly Definition[], nullable: ReadonlyMap<string, boolean>): void {
  const edges = new Map(defs.map((d) => {
    const out = new Set<string>();
    leftRefs(d.body, nullable, out);
    return [d.key, [...out]] as const;
  }));
  const state = new Map<string, 'active' | 'done'>();
  const path: string[] = [];
  const visit = (key: string): void => {
    if (state.get(key) === 'done') return;
    if (state.get(key) === 'active') {
      const cycle = [...path.slice(path.indexOf(key)), key].map((k) => k.replace(/^common\./, ''));
      throw new Unsupported(`left recursion is not supported (GBNF cannot express it; use repetition instead): ${cycle.join(' -> ')}`);
    }
    state.set(key, 'active');
    path.push(key);
    for (const next of edges.get(key) ?? []) visit(next);
    path.pop();
    state.set(key, 'done');
  };
  for (const def of defs) visit(def.key);
}

// ---------------------------------------------------------------------------------------------------
// GBNF back end.

class Emitter {
  readonly #names: Map<string, string>;
  readonly #nullable: Map<string, boolean>;
  readonly #taken: Set<string>;
  readonly #defs: ReadonlyMap<string, Definition>;
  /** Rules derived as "`key` minus the empty string", by key; null when that leaves nothing. */
  readonly #nonEmptyRules = new Map<string, string | null>();
  readonly #inProgress = new Set<string>();
  readonly #extra: Array<{ name: string; body: Expr }> = [];

  constructor(names: Map<string, string>, nullable: Map<string, boolean>, taken = new Set<string>(['root']), defs: ReadonlyMap<string, Definition> = new Map()) {
    this.#names = names;
    this.#nullable = nullable;
    this.#taken = taken;
    this.#defs = defs;
  }

  render(rules: ReadonlyArray<{ name: string; body: Expr }>): string {
    const lines: string[] = [];
    const queue = [...rules];
    let size = 0;
    for (let rule = queue.shift(); rule; rule = queue.shift()) {
      const body = this.#simplify(rule.body);
      // llama.cpp copies the operand of `{m,n}` once per repetition, so a few characters of GBNF can
      // expand into millions of elements in the worker; refuse such grammars instead.
      size += expandedSize(body);
      if (size > MAX_EXPANDED_SIZE) throw new Unsupported(`the grammar is too large once its repetitions are expanded (over ${MAX_EXPANDED_SIZE} elements)`);
      lines.push(`${rule.name} ::= ${this.#emit(body, 0)}`);
      queue.push(...this.#extra.splice(0));
    }
    return lines.join('\n') + '\n';
  }

  #isNullable(e: Expr): boolean {
    return nullableExpr(e, this.#nullable);
  }

  /** Canonical form: flat sequences with merged literals, and no unbounded repeat of a nullable expression. */
  #simplify(e: Expr): Expr {
    switch (e.k) {
      case 'seq': {
        const items: Expr[] = [];
        for (const x of e.xs.map((x) => this.#simplify(x)).flatMap((x) => (x.k === 'seq' ? x.xs : [x]))) {
          const last = items[items.length - 1];
          if (x.k === 'lit' && x.s === '') continue;
          if (x.k === 'lit' && last?.k === 'lit') items[items.length - 1] = lit(last.s + x.s);
          else items.push(x);
        }
        return items.length === 0 ? EMPTY : seq(items);
      }
      case 'alt': return alt(e.xs.map((x) => this.#simplify(x)).flatMap((x) => (x.k === 'alt' ? x.xs : [x])));
      case 'rep': {
        let x = this.#simplify(e.x);
        let min = e.min;
        if (e.max === 0 || (x.k === 'lit' && x.s === '')) return EMPTY;
        if (e.max === null && this.#isNullable(x)) {
          // x{n,} with x nullable is (x minus "")*; llama.cpp would loop or flag left recursion on the original.
          const nonEmpty = this.#nonEmpty(x);
          if (!nonEmpty) return EMPTY;
          x = this.#simplify(nonEmpty);
          min = 0;
        }
        if (e.max === null && x.k === 'rep' && x.max === null && x.min <= 1 && min <= 1) return rep(x.x, x.min * min, null);
        if (min === 1 && e.max === 1) return x;
        return rep(x, min, e.max);
      }
      default: return e;
    }
  }

  /** An expression for the non-empty matches of `e`, or null when `e` only matches "". */
  #nonEmpty(e: Expr): Expr | null {
    if (!this.#isNullable(e)) return e;
    switch (e.k) {
      case 'lit':
      case 'cls': return null;
      case 'alt': {
        const options = e.xs.map((x) => this.#nonEmpty(x)).filter((x): x is Expr => x !== null);
        return options.length === 0 ? null : alt(options);
      }
      case 'seq': {
        // Every item is nullable here: (a rest) minus "" = (a minus "") rest | (rest minus "").
        const [head, ...rest] = e.xs;
        if (rest.length === 0) return this.#nonEmpty(head);
        const headNonEmpty = this.#nonEmpty(head);
        const restNonEmpty = this.#nonEmpty(seq(rest));
        const options = [headNonEmpty && seq([headNonEmpty, ...rest]), restNonEmpty].filter((x): x is Expr => x !== null);
        return options.length === 0 ? null : alt(options);
      }
      case 'rep': {
        const inner = e.max === 0 ? null : this.#nonEmpty(e.x);
        return inner && rep(inner, 1, e.max);
      }
      case 'ref': {
        const key = `${e.name}#nonempty`;
        if (this.#nonEmptyRules.has(e.name)) return this.#nonEmptyRules.get(e.name) === null ? null : { k: 'ref', name: key, line: e.line };
        const def = this.#defs.get(e.name);
        // A cycle here would be left recursion, which was rejected before emitting.
        if (!def || this.#inProgress.has(e.name)) throw new Error(`cannot remove the empty match of \`${e.name}\``);
        this.#inProgress.add(e.name);
        const body = this.#nonEmpty(def.body);
        this.#inProgress.delete(e.name);
        if (!body) {
          this.#nonEmptyRules.set(e.name, null);
          return null;
        }
        const name = allocate(`${this.#names.get(e.name)}-nonempty`, this.#taken);
        this.#nonEmptyRules.set(e.name, name);
        this.#names.set(key, name);
        this.#nullable.set(key, false);
        this.#extra.push({ name, body });
        return { k: 'ref', name: key, line: e.line };
      }
    }
  }

  /** `level`: 0 = rule body, 1 = sequence item (alternations need parentheses), 2 = operand of a quantifier. */
  #emit(e: Expr, level: 0 | 1 | 2): string {
    switch (e.k) {
      case 'lit': return quote(e.s);
      case 'cls': return classText(e.neg, e.r);
      case 'ref': return this.#names.get(e.name)!;
      case 'seq': {
        const text = e.xs.map((x) => this.#emit(x, 1)).join(' ');
        return level === 2 ? `(${text})` : text;
      }
      case 'alt': {
        const text = e.xs.map((x) => this.#emit(x, 1)).join(' | ');
        return level >= 1 ? `(${text})` : text;
      }
      case 'rep': {
        const text = this.#emit(e.x, 2) + suffix(e.min, e.max);
        return level === 2 ? `(${text})` : text;
      }
    }
  }
}

/** Roughly how many grammar elements llama.cpp builds for `e` (literals count per character). */
function expandedSize(e: Expr): number {
  switch (e.k) {
    case 'lit': return Math.max(1, Array.from(e.s).length);
    case 'cls': return e.r.length + 1;
    case 'ref': return 1;
    case 'seq':
    case 'alt': return e.xs.reduce((sum, x) => sum + expandedSize(x), 1);
    case 'rep': return expandedSize(e.x) * Math.max(1, e.max ?? e.min + 1) + 1;
  }
}

function suffix(min: number, max: number | null): string {
  if (min === 0 && max === 1) return '?';
  if (min === 0 && max === null) return '*';
  if (min === 1 && max === null) return '+';
  if (max === null) return `{${min},}`;
  return min === max ? `{${min}}` : `{${min},${max}}`;
}

/** `\xHH` only for ASCII, so no reader mistakes it for a UTF-8 byte (llama.cpp reads all three as code points). */
function hexEscape(cp: number): string {
  if (cp < 0x80) return `\\x${cp.toString(16).toUpperCase().padStart(2, '0')}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return `\\U${cp.toString(16).toUpperCase().padStart(8, '0')}`;
}

/** One code point as GBNF text; `special` are the extra ASCII characters that need a hex escape here. */
function charText(cp: number, special: string): string {
  if (cp === 0x5c) return '\\\\';
  if (cp === 0x0a) return '\\n';
  if (cp === 0x0d) return '\\r';
  if (cp === 0x09) return '\\t';
  const c = String.fromCodePoint(cp);
  if (cp < 0x20 || cp >= 0x7f) return hexEscape(cp);
  if (special.includes(c)) return c === '"' || c === '[' || c === ']' ? `\\${c}` : hexEscape(cp);
  return c;
}

function quote(s: string): string {
  return `"${Array.from(s, (c) => charText(c.codePointAt(0)!, '"')).join('')}"`;
}

/**
 * GBNF class text. llama.cpp's class parser only knows the escapes `\\ \] \[ \" \n \r \t \xHH \uHHHH
 * \UHHHHHHHH`, so `-` and `^` (range and negation syntax) are written as hex escapes.
 */
function classText(negated: boolean, ranges: readonly Range[]): string {
  let neg = negated;
  let set = normalize(ranges);
  // A set reaching U+10FFFF reads better as the negation of its complement (`[^0-9]` for `\D`).
  if (set.length > 0 && set[set.length - 1][1] === MAX_CP) {
    neg = !neg;
    set = complement(set);
  }
  // llama.cpp cannot parse `[]` or `[^]`: write "any character" and "no character" with the full range.
  if (set.length === 0) return neg ? '[\\x00-\\U0010FFFF]' : '[^\\x00-\\U0010FFFF]';
  const c = (cp: number): string => charText(cp, '[]-^');
  const body = set.map(([lo, hi]) => (lo === hi ? c(lo) : hi === lo + 1 ? c(lo) + c(hi) : `${c(lo)}-${c(hi)}`)).join('');
  return `[${neg ? '^' : ''}${body}]`;
}

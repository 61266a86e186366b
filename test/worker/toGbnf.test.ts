import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getLlama, type Llama } from 'node-llama-cpp';
import { larkToGbnf, regexToGbnf, type GbnfResult } from '../../src/worker/grammar/toGbnf.js';

let llama: Llama;
before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', progressLogs: false });
});
after(async () => {
  await llama?.dispose();
});

/** Asserts the translation succeeded and that llama.cpp's own GBNF parser accepts the output. */
async function valid(result: GbnfResult, what: string): Promise<Grammar> {
  assert.ok(result.ok, `${what}: ${result.ok ? '' : result.reason}`);
  try {
    await llama.createGrammar({ grammar: result.gbnf });
  } catch (error) {
    assert.fail(`${what}: llama.cpp rejects\n${result.gbnf}\n${String(error)}`);
  }
  return parseGbnf(result.gbnf);
}

function rejected(result: GbnfResult, reason: RegExp, what: string): void {
  assert.equal(result.ok, false, `${what} should be rejected, got\n${result.ok ? result.gbnf : ''}`);
  if (!result.ok) assert.match(result.reason, reason, what);
}

// ---------------------------------------------------------------------------------------------------
// A small GBNF interpreter, so "text X matches" is checked on the emitted GBNF text itself. It covers
// what the translator emits: one rule per line, literals, classes, groups, `|`, `* + ? {m} {m,} {m,n}`.

type Node =
  | { t: 'lit'; cps: number[] }
  | { t: 'cls'; neg: boolean; ranges: Array<[number, number]> }
  | { t: 'ref'; name: string }
  | { t: 'seq'; xs: Node[] }
  | { t: 'alt'; xs: Node[] }
  | { t: 'rep'; x: Node; min: number; max: number | null };
type Grammar = Map<string, Node>;

function parseGbnf(text: string): Grammar {
  const rules: Grammar = new Map();
  for (const line of text.split('\n').filter(Boolean)) {
    const m = /^([a-zA-Z0-9-]+) ::= (.*)$/.exec(line);
    assert.ok(m, `rule line: ${line}`);
    rules.set(m[1], parseBody(m[2]));
  }
  for (const node of rules.values()) checkRefs(node, rules);
  return rules;
}

function checkRefs(node: Node, rules: Grammar): void {
  if (node.t === 'ref') assert.ok(rules.has(node.name), `undefined rule ${node.name}`);
  if (node.t === 'seq' || node.t === 'alt') node.xs.forEach((x) => checkRefs(x, rules));
  if (node.t === 'rep') checkRefs(node.x, rules);
}

function parseBody(body: string): Node {
  const cps = Array.from(body, (c) => c.codePointAt(0)!);
  let i = 0;
  const c = (): string => (i < cps.length ? String.fromCodePoint(cps[i]) : '');
  const skip = (): void => {
    while (c() === ' ') i++;
  };
  const char = (): number => {
    if (c() !== '\\') return cps[i++];
    i++;
    const e = c();
    i++;
    const hex = (n: number): number => {
      const v = parseInt(String.fromCodePoint(...cps.slice(i, i + n)), 16);
      i += n;
      return v;
    };
    switch (e) {
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case '\\': case '"': case '[': case ']': return e.codePointAt(0)!;
      default: throw new Error(`bad escape \\${e} in ${body}`);
    }
  };
  const alt = (): Node => {
    const xs = [seq()];
    while (c() === '|') {
      i++;
      xs.push(seq());
    }
    return xs.length === 1 ? xs[0] : { t: 'alt', xs };
  };
  const seq = (): Node => {
    const xs: Node[] = [];
    skip();
    while (i < cps.length && c() !== '|' && c() !== ')') {
      let x = atom();
      for (;;) {
        if (c() === '*' || c() === '+' || c() === '?') {
          x = { t: 'rep', x, min: c() === '+' ? 1 : 0, max: c() === '?' ? 1 : null };
          i++;
        } else if (c() === '{') {
          const m = /^\{(\d+)(,(\d*))?\}/.exec(String.fromCodePoint(...cps.slice(i)))!;
          x = { t: 'rep', x, min: Number(m[1]), max: m[2] === undefined ? Number(m[1]) : m[3] === '' ? null : Number(m[3]) };
          i += m[0].length;
        } else break;
      }
      xs.push(x);
      skip();
    }
    return xs.length === 1 ? xs[0] : { t: 'seq', xs };
  };
  const atom = (): Node => {
    if (c() === '"') {
      i++;
      const out: number[] = [];
      while (c() !== '"') out.push(char());
      i++;
      return { t: 'lit', cps: out };
    }
    if (c() === '[') {
      i++;
      const neg = c() === '^';
      if (neg) i++;
      const ranges: Array<[number, number]> = [];
      while (c() !== ']') {
        const lo = char();
        if (c() === '-' && cps[i + 1] !== 0x5d) {
          i++;
          ranges.push([lo, char()]);
        } else ranges.push([lo, lo]);
      }
      i++;
      return { t: 'cls', neg, ranges };
    }
    if (c() === '(') {
      i++;
      const inner = alt();
      assert.equal(c(), ')', body);
      i++;
      return inner;
    }
    const m = /^[a-zA-Z0-9-]+/.exec(String.fromCodePoint(...cps.slice(i)));
    assert.ok(m, `atom at ${i} in ${body}`);
    i += m[0].length;
    return { t: 'ref', name: m[0] };
  };
  const node = alt();
  assert.equal(i, cps.length, `parsed all of ${body}`);
  return node;
}

/** Whether `root` of `grammar` matches all of `text` (sets of end positions; fine without left recursion). */
function matches(grammar: Grammar, text: string): boolean {
  const input = Array.from(text, (ch) => ch.codePointAt(0)!);
  const memo = new Map<string, Set<number>>();
  const ends = (node: Node, pos: number): Set<number> => {
    switch (node.t) {
      case 'lit':
        return new Set(node.cps.every((cp, k) => input[pos + k] === cp) ? [pos + node.cps.length] : []);
      case 'cls': {
        if (pos >= input.length) return new Set();
        const inSet = node.ranges.some(([lo, hi]) => input[pos] >= lo && input[pos] <= hi);
        return new Set(inSet !== node.neg ? [pos + 1] : []);
      }
      case 'ref': {
        const key = `${node.name}@${pos}`;
        const known = memo.get(key);
        if (known) return known;
        memo.set(key, new Set()); // a re-entry at the same position would be left recursion
        const result = ends(grammar.get(node.name)!, pos);
        memo.set(key, result);
        return result;
      }
      case 'seq': {
        let current = new Set([pos]);
        for (const x of node.xs) current = new Set([...current].flatMap((p) => [...ends(x, p)]));
        return current;
      }
      case 'alt':
        return new Set(node.xs.flatMap((x) => [...ends(x, pos)]));
      case 'rep': {
        const out = new Set<number>(node.min === 0 ? [pos] : []);
        const seen = new Set<number>();
        let frontier = new Set([pos]);
        for (let k = 1; node.max === null || k <= node.max; k++) {
          let next = new Set([...frontier].flatMap((p) => [...ends(node.x, p)]));
          if (k >= node.min) {
            next.forEach((p) => out.add(p));
            if (node.max === null) {
              next = new Set([...next].filter((p) => !seen.has(p)));
              next.forEach((p) => seen.add(p));
            }
          }
          if (next.size === 0) break;
          frontier = next;
        }
        return out;
      }
    }
  };
  return ends({ t: 'ref', name: 'root' }, 0).has(input.length);
}

function assertMatches(grammar: Grammar, yes: readonly string[], no: readonly string[], what: string): void {
  for (const text of yes) assert.ok(matches(grammar, text), `${what} should match ${JSON.stringify(text)}`);
  for (const text of no) assert.ok(!matches(grammar, text), `${what} should not match ${JSON.stringify(text)}`);
}

// ---------------------------------------------------------------------------------------------------

const APPLY_PATCH = String.raw`start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?
hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change?
filename: /(.+)/
add_line: "+" /(.*)/ LF -> line
change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF
%import common.LF
`;

test('the apply_patch grammar translates to the expected GBNF, compiles, and matches patches', async () => {
  const result = larkToGbnf(APPLY_PATCH);
  const grammar = await valid(result, 'apply_patch');
  assert.equal(
    result.ok && result.gbnf,
    [
      'root ::= begin-patch hunk+ end-patch',
      'begin-patch ::= "*** Begin Patch" LF',
      'end-patch ::= "*** End Patch" LF?',
      'hunk ::= add-hunk | delete-hunk | update-hunk',
      'add-hunk ::= "*** Add File: " filename LF add-line+',
      'delete-hunk ::= "*** Delete File: " filename LF',
      'update-hunk ::= "*** Update File: " filename LF change-move? change?',
      'filename ::= [^\\n]+',
      'add-line ::= "+" [^\\n]* LF',
      'change-move ::= "*** Move to: " filename LF',
      'change ::= (change-context | change-line)+ eof-line?',
      'change-context ::= ("@@" | "@@ " [^\\n]+) LF',
      'change-line ::= ("+" | "-" | " ") [^\\n]* LF',
      'eof-line ::= "*** End of File" LF',
      'LF ::= "\\n"',
      '',
    ].join('\n'),
  );
  const spaced = larkToGbnf(APPLY_PATCH.replace(/\n/g, '\r\n\n').replace('hunk: add_hunk | ', 'hunk: add_hunk // comment\n    | '));
  assert.deepEqual(spaced, result, 'blank lines, CRLF, comments and `|` continuation lines change nothing');
  const patch = (...lines: string[]): string => lines.join('\n');
  assertMatches(
    grammar,
    [
      patch('*** Begin Patch', '*** Add File: hello.txt', '+Hello', '+', '*** End Patch', ''),
      patch('*** Begin Patch', '*** Delete File: old.txt', '*** End Patch'),
      patch('*** Begin Patch', '*** Update File: src/a.ts', '*** Move to: src/b.ts', '@@ function f() {', ' keep', '-old', '+new', '@@', ' x', '*** End of File', '*** End Patch', ''),
      patch('*** Begin Patch', '*** Update File: a', '*** Delete File: b', '*** End Patch'),
    ],
    [
      patch('*** Add File: hello.txt', '+Hello', '*** End Patch'),
      patch('*** Begin Patch', '*** End Patch'),
      patch('*** Begin Patch', '*** Add File: hello.txt', '*** End Patch'),
      patch('*** Begin Patch', '*** Add File: ', '+x', '*** End Patch'),
      patch('*** Begin Patch', '*** Update File: a', 'no prefix', '*** End Patch'),
      patch('*** Begin Patch', '*** Delete File: b', '*** End Patch', '', ''),
    ],
    'apply_patch',
  );
});

test('regexes translate to the expected GBNF, compile, and match what the regex matches', async () => {
  const cases: Array<[pattern: string, gbnf: string, yes: string[], no: string[]]> = [
    ['^[a-z]+$', '[a-z]+', ['abc', 'z'], ['', 'aB', 'a\n']],
    [String.raw`\d{3}-\d{4}`, '[0-9]{3} "-" [0-9]{4}', ['555-1234'], ['5551234', '55-1234', '555-12345']],
    ['(foo|bar)*baz', '("foo" | "bar")* "baz"', ['baz', 'foobarfoobaz'], ['foo', 'bazbaz']],
    [String.raw`[^"\\]+`, String.raw`[^"\\]+`, ['abc', "it's\n"], ['', 'a"b', 'a\\b']],
    ['a.c', '"a" [^\\n] "c"', ['abc', 'a.c'], ['a\nc', 'ac']],
    [String.raw`\w+\s\S\W\D`, String.raw`[0-9A-Z_a-z]+ [\t-\r ] [^\t-\r ] [^0-9A-Z_a-z] [^0-9]`, ['a_1\tx-z'], ['a_1\txyz', 'a  x-1']],
    [String.raw`[\]\\^-]`, String.raw`[\x2D\\-\x5E]`, [']', '\\', '^', '-'], ['[', 'a']],
    ['[]a]', String.raw`[\]a]`, [']', 'a'], ['b']],
    ['[^-a-c]', String.raw`[^\x2Da-c]`, ['d', '\n'], ['-', 'b']],
    ['(?:ab)+?c{2,}x{1,3}y{2}z?', '"ab"+ "c"{2,} "x"{1,3} "y"{2} "z"?', ['abccxyy', 'ababcccxxxyyz'], ['abcxyy', 'abccxxxxyy']],
    ['a{,2}b{}', '"a"{0,2} "b{}"', ['b{}', 'aab{}'], ['aaab{}', 'b']],
    ['(a*)*b', '"a"* "b"', ['b', 'aaab'], ['a']],
    ['(a?b?)+c', '("a" "b"? | "b")* "c"', ['c', 'abbac'], ['ca']],
    ['(a|)*', '"a"*', ['', 'aaa'], ['b']],
    ['x|^y$|', '"x" | "y" | ""', ['x', 'y', ''], ['xy']],
    [String.raw`\x41\u00e9\u{1F600}\t\/\.`, String.raw`"A\u00E9\U0001F600\t/."`, ['Aé😀\t/.'], ['Aé😀\t/x']],
    ['"q"', String.raw`"\"q\""`, ['"q"'], ['q']],
    ['', '""', [''], ['a']],
  ];
  for (const [pattern, body, yes, no] of cases) {
    const result = regexToGbnf(pattern);
    const grammar = await valid(result, pattern);
    assert.equal(result.ok && result.gbnf, `root ::= ${body}\n`, pattern);
    assertMatches(grammar, yes, no, pattern);
  }
});

test('random regexes: the GBNF accepts exactly what JavaScript RegExp accepts', async () => {
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const atoms = ['a', 'b', '.', '[ab]', '[^a]', String.raw`\d`, '[a-c]', String.raw`\n`, '-', String.raw`\-`, '[-a]', String.raw`\s`];
  const quantifiers = ['', '', '', '*', '+', '?', '{2}', '{1,}', '{0,2}', '*?', '??'];
  const gen = (depth: number): string => {
    const kind = depth > 2 ? 0 : random(5);
    if (kind === 0) return atoms[random(atoms.length)];
    if (kind === 1) return gen(depth + 1) + gen(depth + 1);
    if (kind === 2) return `(?:${gen(depth + 1)}|${random(3) === 0 ? '' : gen(depth + 1)})`;
    const group = random(2) === 0 ? `(${gen(depth + 1)})` : `(?:${gen(depth + 1)})`;
    return group + quantifiers[random(quantifiers.length)];
  };
  const alphabet = ['a', 'b', 'c', '1', '\n', '-', ' '];
  for (let n = 0; n < 300; n++) {
    const pattern = gen(0);
    const grammar = await valid(regexToGbnf(pattern), pattern);
    const js = new RegExp(`^(?:${pattern})$`);
    for (let s = 0; s < 25; s++) {
      const text = Array.from({ length: random(6) }, () => alphabet[random(alphabet.length)]).join('');
      assert.equal(matches(grammar, text), js.test(text), `${pattern} on ${JSON.stringify(text)}`);
    }
  }
});

test('Lark features: modifiers, priorities, continuation lines, repetition, ranges, case-insensitive strings', async () => {
  const grammar = String.raw`
// a comment line
?start: greeting ~ 1..2 number? item* _tail
      | "x" -> just_x   // alias is ignored
!greeting.2: "hello"i " " ["world" | "you"]
number: DIGITS ("," DIGITS) ~ 2
DIGITS.5: "0".."9"+
item: ("a"? "b"?)
_tail: ( "!"
       | "?" )
root: "unused"
`;
  const result = larkToGbnf(grammar);
  const parsed = await valid(result, 'features');
  assert.equal(
    result.ok && result.gbnf,
    [
      'root ::= greeting{1,2} number? item-nonempty* tail | "x"',
      'greeting ::= [Hh] [Ee] [Ll] [Ll] [Oo] " " ("world" | "you")?',
      'number ::= DIGITS ("," DIGITS){2}',
      'DIGITS ::= [0-9]+',
      'item ::= "a"? "b"?',
      'tail ::= "!" | "?"',
      'item-nonempty ::= "a" "b"? | "b"',
      '',
    ].join('\n'),
  );
  assertMatches(parsed, ['HeLLo !', 'hello worldhello you1,2,3abba?', 'x'], ['hello', 'hello 1,2!', 'hello hello hello !', 'xx'], 'features');
});

test('Lark string escapes follow Lark: known escapes are decoded, unknown ones keep their backslash', async () => {
  const result = larkToGbnf(String.raw`start: "\x41\"\\\q\u00e9\t" /\//` + '\n');
  const grammar = await valid(result, 'escapes');
  assert.equal(result.ok && result.gbnf, String.raw`root ::= "A\"\\\\q\u00E9\t/"` + '\n');
  assertMatches(grammar, ['A"\\\\qé\t/'], ['A"\\qé\t/'], 'escapes');
});

test('names: `_` becomes `-`, leading `_` is dropped, clashes and a user `root` get suffixes', async () => {
  const result = larkToGbnf('start: root _a a a_b\nroot: "r"\n_a: "1"\na: "2"\na_b: _B\n_B: "3"\n');
  await valid(result, 'names');
  assert.equal(result.ok && result.gbnf, 'root ::= root-2 a-2 a a-b\nroot-2 ::= "r"\na-2 ::= "1"\na ::= "2"\na-b ::= B\nB ::= "3"\n');
});

test('common terminals: each import compiles and matches its usual texts', async () => {
  const samples: Record<string, [yes: string[], no: string[]]> = {
    LF: [['\n'], ['\r\n']],
    CR: [['\r'], ['\n']],
    NEWLINE: [['\n', '\r\n\n'], ['', '\r']],
    WS: [[' ', ' \t\r\n\f'], ['']],
    WS_INLINE: [[' \t '], ['\n']],
    DIGIT: [['7'], ['a', '12']],
    HEXDIGIT: [['f', 'A', '9'], ['g']],
    LETTER: [['q', 'Q'], ['1']],
    WORD: [['Hello'], ['he llo', '']],
    INT: [['0', '123'], ['-1', '']],
    SIGNED_INT: [['-1', '+2', '3'], ['--1']],
    DECIMAL: [['1.', '1.5', '.5'], ['.', '1']],
    FLOAT: [['1e5', '1.5E-3', '.5', '2.'], ['1', 'e5']],
    NUMBER: [['1', '1.5', '1e-9'], ['1.2.3', '+1']],
    SIGNED_NUMBER: [['-1.5', '+3', '4'], ['-']],
    SIGNED_FLOAT: [['-1.5'], ['-1']],
    ESCAPED_STRING: [['""', '"a b"', String.raw`"a\"b"`, String.raw`"\\"`], ['"a"b"', String.raw`"\"`, '"a\nb"', 'a']],
    CNAME: [['_x1', 'Foo_bar'], ['1x', 'a-b']],
    LCASE_LETTER: [['a'], ['A']],
    UCASE_LETTER: [['A'], ['a']],
    SH_COMMENT: [['# hi', '#'], ['#\n']],
    CPP_COMMENT: [['// hi'], ['/ hi']],
    C_COMMENT: [['/* a * b */', '/**/', '/***/', '/* a\n b **/'], ['/* a */ b */', '/*/', '/* a']],
    SQL_COMMENT: [['-- hi'], ['- hi']],
  };
  for (const [name, [yes, no]] of Object.entries(samples)) {
    const grammar = await valid(larkToGbnf(`start: ${name}\n%import common.${name}\n`), name);
    assertMatches(grammar, yes, no, name);
  }
  const listed = await valid(larkToGbnf('start: MY_INT (" " WORD)*\n%import common (WORD, DIGIT)\n%import common.INT -> MY_INT\n'), 'list import');
  assertMatches(listed, ['12 ab cd', '3'], ['ab', '12 '], 'list import');
});

test('unsupported constructs return ok:false naming the construct', () => {
  const lark: Array<[string, RegExp]> = [
    ['start: WORD\n%import common.WORD\n%ignore WS\n%import common.WS\n', /%ignore/],
    ['start: x\nx: x "a" | "b"\n', /left recursion.*x -> x/],
    ['start: a\na: b* a "x"\nb: "y"\n', /left recursion/],
    ['start: FOO\n', /`FOO` is used but not defined/],
    ['start: LF\n', /missing `%import common\.LF`/],
    ['a: "x"\n', /no `start` rule/],
    ['start: "a"\nstart: "b"\n', /defined more than once/],
    ['start: A\nA: b\nb: "x"\n', /terminal `A` uses rule `b`/],
    ['start: _sep{x}\n', /template/],
    ['%declare X\nstart: "a"\n', /%declare/],
    ['%override start: "a"\n', /%override/],
    ['start: "a"\n%import foo.X\n', /only `%import common/],
    ['start: X\n%import common.NOPE -> X\n', /common` has no terminal `NOPE`/],
    ['start: /a/i\n', /regex flags `i`/],
    ['start: /^a/\n', /anchor/],
    ['start: /(?=a)a/\n', /lookahead/],
    ['start: "a\n', /newline inside a string literal/],
    ['start: "a" "b"\n"c"\n', /line 2/],
    ['start: ("a"\n', /expected `\)`/],
    ['start: "a"~5..2\n', /out of order/],
    ['start: "ab".."z"\n', /literal range/],
    ['start: "a" ~ 100000\n', /repetition bound/],
    ['start: "a" $\n', /unexpected character/],
    ['start: ("a" ~ 1000) ~ 1001\n', /too large/],
  ];
  for (const [definition, reason] of lark) rejected(larkToGbnf(definition), reason, JSON.stringify(definition));
  const regex: Array<[string, RegExp]> = [
    ['(?=x)', /lookahead `\(\?=`/],
    ['(?!x)', /lookahead/],
    ['(?<=x)y', /lookbehind/],
    ['(?<!x)y', /lookbehind/],
    [String.raw`(a)\1`, /backreference `\\1`/],
    [String.raw`(?<n>a)\k<n>`, /named group/],
    ['(?P<n>a)', /named group/],
    ['(?P=n)', /backreference/],
    ['(?i)abc', /inline flags/],
    ['(?>a)', /not supported/],
    [String.raw`\p{L}+`, /Unicode property escape `\\p`/],
    [String.raw`\P{L}`, /Unicode property/],
    [String.raw`\bword\b`, /word boundary/],
    [String.raw`\Aabc`, /escape `\\A`/],
    ['a^b', /anchor `\^`/],
    ['a$b', /anchor `\$`/],
    ['(^a)', /anchor/],
    ['a**', /nested quantifier/],
    ['a*+', /possessive/],
    ['*a', /nothing to repeat/],
    ['a{3,2}', /out of order/],
    ['a{20000}', /repetition bound/],
    ['[[:alpha:]]', /POSIX/],
    ['[z-a]', /bad character range/],
    [String.raw`[\d-z]`, /bad character range/],
    ['[abc', /unterminated character class/],
    ['(ab', /missing `\)`/],
    ['ab)', /unbalanced `\)`/],
    ['ab\\', /ends with a backslash/],
    [String.raw`\01`, /octal/],
    [String.raw`\xZZ`, /hex digits/],
    ['(ab{1000}){1000}', /too large/],
  ];
  for (const [pattern, reason] of regex) rejected(regexToGbnf(pattern), reason, pattern);
});

test('never throws, and whatever it accepts compiles, on random input', async () => {
  let seed = 777;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const larkPieces = ['start', ':', ' ', '\n', '|', '"a"', '"b"i', '/a+/', '/[^x]/', '(', ')', '[', ']', '?', '*', '+', '~', '2', '..', '3', 'x', 'X', '_y', '->', '%import common.LF', 'LF', '//c', '"\\n"', '.', '!', '{', '}', '%ignore'];
  const regexPieces = ['a', '|', '(', ')', '(?:', '[', ']', '^', '$', '-', '*', '+', '?', '{', '}', ',', '2', '\\', 'd', '.', 'x', '(?', '=', '<', '\\1', '"'];
  let accepted = 0;
  for (let n = 0; n < 400; n++) {
    const pieces = n % 2 === 0 ? larkPieces : regexPieces;
    const text = (n % 2 === 0 ? 'start: ' : '') + Array.from({ length: 1 + random(14) }, () => pieces[random(pieces.length)]).join('');
    let result: GbnfResult;
    try {
      result = n % 2 === 0 ? larkToGbnf(text) : regexToGbnf(text);
    } catch (error) {
      assert.fail(`threw on ${JSON.stringify(text)}: ${String(error)}`);
    }
    if (result.ok) {
      accepted++;
      await valid(result, JSON.stringify(text));
    } else assert.ok(result.reason.length > 0);
  }
  assert.ok(accepted > 20, `some random inputs are valid (${accepted})`);
  assert.equal(larkToGbnf(undefined as unknown as string).ok, false);
  assert.equal(regexToGbnf('('.repeat(100000)).ok, false, 'absurd nesting is a failed result, not a stack overflow');
});

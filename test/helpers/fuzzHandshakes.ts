/**
 * Seeded WebSocket handshakes and API-key variants for a server with keys
 * (test/e2e/faults.test.ts): session names (`x-flint-session` and the other session headers, or
 * `?session=`), subprotocols with `flint-insecure-api-key.<key>`, Origin, and keys sent as
 * `Authorization`, `x-api-key` or `api-key` on the Anthropic, Ollama and /infill routes. Each case
 * is a pure function of its Rng and the keys, and carries the answer the server must give,
 * computed by the rules the server documents.
 */

import { toBody, type Rng } from './fuzz.js';
import type { ProtocolCase } from './fuzzProtocols.js';

/** Keys of the server under test: `valid` is configured, `other` is not. */
export interface FuzzKeys {
  readonly valid: string;
  readonly other: string;
}

/** One handshake, as header lines written to a raw socket. */
export interface HandshakeCase {
  readonly path: string;
  /** In order; a name may repeat (Node joins repeated values of most headers with ', '). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly label: string;
  /**
   * 101, or the status of our refusal (401 key, 403 origin, 400 session name), all in the OpenAI
   * envelope; 'refused' where the WebSocket library refuses a malformed handshake itself.
   */
  readonly expect: 101 | 400 | 401 | 403 | 'refused';
  /** For a 101: the subprotocol the answer must name, or undefined for none. */
  readonly protocol?: string;
}

/** Session headers the server reads, first present wins (config `websocket.sessionHeaders`). */
const sessionHeaders = ['x-flint-session', 'session-id', 'session_id'] as const;
const sessionNamePattern = /^[A-Za-z0-9._:-]{1,128}$/;
/** RFC 7230 token characters, which `ws` requires of each offered subprotocol. */
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A few names that repeat across cases, so sessions are also joined while live and resumed after a close. */
const validNames = ['agent-1', 'agent-2', 'a', 'A.b_c:d-e', '0', 'x'.repeat(128), '550e8400-e29b-41d4-a716-446655440000', '01HZX3K5Q8'];
const invalidNames = ['', ' x', 'a b', 'x'.repeat(129), 'a/b', 'a,b', 'ü', 'semi;colon', 'quote"d', '\u00ff', 'a\tb', 'tab\t', '%41'];

/** What the server reads from a query value (fast-querystring: `+` is a space, `%XX` decoded when valid). */
function decodeQueryValue(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

/** The key a request presents, by the server's rules: Authorization first, then x-api-key (else api-key), then a key subprotocol on an upgrade. */
function presentedKey(headers: Map<string, string>): string | undefined {
  const authorization = headers.get('authorization');
  if (authorization !== undefined) return /^\s*bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
  const apiKey = (headers.get('x-api-key') ?? headers.get('api-key'))?.trim();
  if (apiKey) return apiKey;
  const protocols = headers.get('sec-websocket-protocol');
  if (protocols !== undefined && headers.has('upgrade')) {
    for (const protocol of protocols.split(',')) {
      const match = /^(?:flint|openai)-insecure-api-key\.(\S+)$/.exec(protocol.trim());
      if (match) return match[1];
    }
  }
  return undefined;
}

/** Headers as Node presents them: lower-case names, repeated values joined with ', ' (Authorization keeps the first). */
function asNodeSees(lines: ReadonlyArray<readonly [string, string]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, raw] of lines) {
    const key = name.toLowerCase();
    const value = raw.trim();
    const before = out.get(key);
    if (before === undefined) out.set(key, value);
    else if (key !== 'authorization' && key !== 'host' && key !== 'origin') out.set(key, `${before}, ${value}`);
  }
  return out;
}

/** A key sent one way or another; `validWeight` weighs a plain right bearer against the 12 of the variants. */
function keyVariant(rng: Rng, keys: FuzzKeys, validWeight: number): { lines: Array<[string, string]>; label: string } {
  return rng.weighted<() => { lines: Array<[string, string]>; label: string }>([
    [validWeight, () => ({ lines: [['Authorization', `Bearer ${keys.valid}`]], label: 'bearer' })],
    [2, () => ({ lines: [['Authorization', rng.pick([`bearer   ${keys.valid}  `, `BEARER ${keys.valid}`, `Bearer ${keys.other}`, `Basic ${keys.valid}`, 'Bearer', `Bearer ${keys.valid} x`, `${keys.valid}`])]], label: 'authorization variant' })],
    [3, () => ({ lines: [[rng.pick(['x-api-key', 'api-key', 'X-Api-Key']), rng.pick([keys.valid, ` ${keys.valid} `, keys.other, ''])]], label: 'api key header' })],
    [1, () => ({ lines: [['x-api-key', ''], ['api-key', keys.valid]], label: 'empty x-api-key, then api-key' })],
    [1, () => ({ lines: [['x-api-key', keys.valid], ['x-api-key', keys.valid]], label: 'x-api-key twice' })],
    [1, () => ({ lines: [['Authorization', `Bearer ${keys.other}`], ['x-api-key', keys.valid]], label: 'wrong bearer, right x-api-key' })],
    [3, () => ({ lines: [], label: 'no key header' })],
  ])();
}

/** A subprotocol offer; `withKey`: most often the right key among them, as a browser sends it. */
function protocolOffer(rng: Rng, keys: FuzzKeys, withKey: boolean): string[] {
  if (withKey && rng.chance(0.7)) return rng.pick([['flint', `flint-insecure-api-key.${keys.valid}`], [`flint-insecure-api-key.${keys.valid}`], ['realtime', `openai-insecure-api-key.${keys.valid}`], [`flint-insecure-api-key.${keys.valid}`, 'flint']]);
  const pool = [
    'flint',
    'realtime',
    'chat',
    `flint-insecure-api-key.${keys.valid}`,
    `openai-insecure-api-key.${keys.valid}`,
    `flint-insecure-api-key.${keys.other}`,
    'flint-insecure-api-key.',
    `FLINT-insecure-api-key.${keys.valid}`,
    `flint-insecure-api-key.${keys.valid}.extra`,
    'a b',
    'x/y',
    '',
    'flint,',
  ];
  const n = rng.weighted([
    [3, 0],
    [4, 1],
    [3, 2],
    [1, 3],
  ]);
  return Array.from({ length: n }, () => rng.pick(pool));
}

/** One handshake on `/v1/responses`, with `Host: flint.test` (an Origin naming it is same-origin). */
export function handshakeCase(rng: Rng, keys: FuzzKeys): HandshakeCase {
  const host = 'flint.test';
  const lines: Array<[string, string]> = [['Host', host]];
  const labels: string[] = [];
  // Without a key header, a key subprotocol is what authenticates.
  const key = keyVariant(rng, keys, 10);
  lines.push(...key.lines);
  labels.push(key.label);

  // The handshake itself: mostly right, sometimes what the WebSocket library refuses.
  const broken = rng.weighted<string | undefined>([
    [20, undefined],
    [1, 'no Sec-WebSocket-Key'],
    [1, 'bad key'],
    [1, 'version 12'],
    [1, 'upgrade h2c'],
  ]);
  lines.push(['Upgrade', broken === 'upgrade h2c' ? 'h2c' : rng.pick(['websocket', 'WebSocket'])], ['Connection', rng.pick(['Upgrade', 'keep-alive, Upgrade'])]);
  if (broken !== 'no Sec-WebSocket-Key') lines.push(['Sec-WebSocket-Key', broken === 'bad key' ? '!!' : 'dGhlIHNhbXBsZSBub25jZQ==']);
  lines.push(['Sec-WebSocket-Version', broken === 'version 12' ? '12' : '13']);
  if (broken) labels.push(broken);

  const offer = protocolOffer(rng, keys, key.lines.length === 0);
  if (offer.length > 0) {
    // Usually one header, sometimes one header per protocol (Node joins them).
    if (rng.chance(0.7)) lines.push(['Sec-WebSocket-Protocol', offer.join(rng.pick([', ', ',']))]);
    else for (const p of offer) lines.push(['Sec-WebSocket-Protocol', p]);
    labels.push(`protocols ${JSON.stringify(offer)}`);
  }

  const origin = rng.weighted<string | undefined>([
    [8, undefined],
    [1, `http://${host}`],
    [1, rng.pick(['http://evil.example', 'null', 'not a url', `https://${host}.evil.example`])],
  ]);
  if (origin !== undefined) {
    lines.push(['Origin', origin]);
    labels.push(`origin ${origin}`);
  }

  // The session: a header, the query, both, or neither.
  const name = (): string => (rng.chance(0.6) ? rng.pick(validNames) : rng.pick(invalidNames));
  let query = '';
  const where = rng.weighted([
    [3, 'none'],
    [4, 'header'],
    [3, 'query'],
    [1, 'both'],
    [1, 'header twice'],
  ]);
  if (where === 'header' || where === 'both' || where === 'header twice') {
    const header = rng.pick(sessionHeaders);
    const value = name();
    lines.push([header, value]);
    if (where === 'header twice') lines.push([header, name()]);
    labels.push(`${header}: ${JSON.stringify(value.slice(0, 40))}${where === 'header twice' ? ' (twice)' : ''}`);
  }
  if (where === 'query' || where === 'both') {
    const raw = rng.pick([...validNames, encodeURIComponent(rng.pick(invalidNames)), 'a+b', '%zz', '%41gent', `${rng.pick(validNames)}&session=${rng.pick(validNames)}`, '']);
    query = `?session=${raw}`;
    labels.push(`query ${JSON.stringify(query.slice(0, 60))}`);
  }

  const seen = asNodeSees(lines);
  const label = labels.join('; ');
  const path = `/v1/responses${query}`;
  const presented = presentedKey(seen);
  if (presented !== keys.valid) return { path, headers: lines, label, expect: 401 };
  // Past authentication, the upgrade is checked only when it asks for a WebSocket.
  const isWebSocket = seen.get('upgrade')?.toLowerCase() === 'websocket';
  if (isWebSocket) {
    const sentOrigin = seen.get('origin');
    if (sentOrigin !== undefined && !isSameOrigin(sentOrigin, host)) return { path, headers: lines, label, expect: 403 };
    const headerName = sessionHeaders.find((h) => seen.has(h));
    const queryValues = query === '' ? [] : query.slice(1).split('&').filter((p) => p.startsWith('session=')).map((p) => decodeQueryValue(p.slice('session='.length)));
    const session = headerName !== undefined ? seen.get(headerName) : queryValues.length > 1 ? undefined : queryValues[0];
    const named = headerName !== undefined || queryValues.length > 0;
    if (named && (session === undefined || !sessionNamePattern.test(session))) return { path, headers: lines, label, expect: 400 };
  }
  if (broken) return { path, headers: lines, label, expect: 'refused' };
  const protocols = seen.get('sec-websocket-protocol');
  if (protocols !== undefined) {
    const offered = protocols.split(',').map((p) => p.trim());
    if (offered.some((p) => !tokenPattern.test(p)) || new Set(offered).size !== offered.length) return { path, headers: lines, label, expect: 'refused' };
    const chosen = offered.includes('flint') ? 'flint' : offered.find((p) => !p.includes('insecure-api-key.'));
    return { path, headers: lines, label, expect: 101, protocol: chosen };
  }
  return { path, headers: lines, label, expect: 101 };
}

function isSameOrigin(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** A small valid request on the Anthropic, Ollama or /infill routes with a key variant, and the status it must get (200 or 401). */
export function keyedCase(rng: Rng, keys: FuzzKeys, model: string): ProtocolCase & { readonly expectStatus: 200 | 401 } {
  const key = keyVariant(rng, keys, 6);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [name, value] of key.lines) {
    const lower = name.toLowerCase();
    headers[lower] = headers[lower] === undefined || lower === 'authorization' ? (headers[lower] ?? value) : `${headers[lower]}, ${value}`;
  }
  const presented = presentedKey(new Map(Object.entries(headers)));
  const expectStatus = presented === keys.valid ? 200 : 401;
  const stream = rng.chance(0.5);
  const route = rng.pick(['messages', 'count_tokens', 'ollama chat', 'ollama generate', 'ollama tags', 'infill'] as const);
  const label = `${route} ${key.label} ${JSON.stringify(key.lines)}`;
  switch (route) {
    case 'messages':
      return { protocol: 'anthropic', method: 'POST', path: '/v1/messages', headers, body: toBody({ model, max_tokens: 1, stream, messages: [{ role: 'user', content: 'hi' }] }), label, expectStatus };
    case 'count_tokens':
      return { protocol: 'anthropic', method: 'POST', path: '/v1/messages/count_tokens', headers, body: toBody({ model, messages: [{ role: 'user', content: 'hi' }] }), label, expectStatus };
    case 'ollama chat':
      return { protocol: 'ollama', method: 'POST', path: '/api/chat', headers, body: toBody({ model, stream, options: { num_predict: 1 }, messages: [{ role: 'user', content: 'hi' }] }), label, expectStatus };
    case 'ollama generate':
      return { protocol: 'ollama', method: 'POST', path: '/api/generate', headers, body: toBody({ model, stream, prompt: 'def f(', options: { num_predict: 1 } }), label, expectStatus };
    case 'ollama tags':
      return { protocol: 'ollama', method: 'GET', path: '/api/tags', headers: Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'content-type')), label, expectStatus };
    default:
      return { protocol: 'infill', method: 'POST', path: '/infill', headers, body: toBody({ input_prefix: 'def f(', input_suffix: '\n', n_predict: 1, stream }), label, expectStatus };
  }
}

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { caseSeed, httpCase, rawHttpCase, Rng, wsFrame, type HttpCase, type WsFrame } from '../helpers/fuzz.js';
import { handshakeCase, keyedCase, type FuzzKeys, type HandshakeCase } from '../helpers/fuzzHandshakes.js';
import { protocolCase, type ProtocolCase } from '../helpers/fuzzProtocols.js';
import { checkProtocolAnswer, envelopeProblem } from '../helpers/protocolAnswers.js';
import { parsePromText, valueOf } from '../helpers/promText.js';
import { spawnServer } from '../helpers/spawnServer.js';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { tinyModelPath } from '../helpers/testModel.js';

// Faults from outside: thousands of hostile requests and frames, clients that vanish at any point,
// and an overload ten times the capacity. The server must answer each with a 4xx (never a 5xx),
// keep its worker, free every slot, and keep its memory where it was.

/**
 * Fixed so a failure can be replayed (FLINT_FUZZ_SEED picks another run): HTTP case i draws from
 * `new Rng(caseSeed(SEED, i))`, first whether it goes over a raw socket (3%: `rawHttpCase`), then
 * whether it goes to the Anthropic, Ollama or /infill routes (`PROTOCOL_SHARE`: `protocolCase`),
 * else `httpCase` (the OpenAI routes).
 */
const SEED = Number(process.env.FLINT_FUZZ_SEED ?? 0xf1a7);
const HTTP_CASES = 3000;
/** The part of the HTTP cases that goes to the other protocols' routes. */
const PROTOCOL_SHARE = 0.2;
/** On a server with keys: raw WebSocket handshakes, then small requests with key variants. */
const HANDSHAKE_CASES = 240;
const KEYED_CASES = 160;
const WS_FRAMES = 2000;

type Metrics = ReturnType<typeof parsePromText>;

async function scrape(url: string): Promise<Metrics> {
  return parsePromText(await (await fetch(`${url}/metrics`)).text());
}

/** Polls until `condition` holds; fails with `what` and the last observation after `ms`. */
async function until<T>(observe: () => Promise<T>, condition: (value: T) => boolean, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await observe();
    if (condition(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function slotState(server: TestServer): Promise<{ busy: number; queued: number; sockets: number }> {
  const busy = (await server.app.metrics.slotsBusy.get()).values.reduce((n, v) => n + v.value, 0);
  const queued = (await server.app.metrics.queueDepth.get()).values.reduce((n, v) => n + v.value, 0);
  const sockets = (await server.app.metrics.wsSessionsOpen.get()).values.reduce((n, v) => n + v.value, 0);
  return { busy, queued, sockets };
}

const idle = (s: { busy: number; queued: number; sockets: number }) => s.busy === 0 && s.queued === 0 && s.sockets === 0;

/** `global.gc`, exposed at run time when node was not started with --expose-gc. */
function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // fall through: compare without a collection, the bound is generous
  }
  return () => undefined;
}

async function heapAfterGc(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

/** Runs `fn(0..n-1)` with at most `concurrency` at a time. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** Shows bytes for a reproduction: printable JSON-escaped text, cut after `max` characters. */
function showBytes(bytes: Buffer | undefined, max = 300): string {
  if (!bytes) return '(no body)';
  const text = JSON.stringify(bytes.subarray(0, max).toString('latin1'));
  return bytes.length > max ? `${text}…(${bytes.length} bytes)` : text;
}

const MiB = 1024 * 1024;

/** The per-client rate and concurrency limits are off here: each test drives one client address far past them on purpose. */
const noClientLimits = 'limits:\n  requestsPerSecond: 0\n  concurrentGenerations: 0\n';

interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request over the shared agent, bounded at `ms`. */
/** What each keep-alive socket carried last, to explain a connection dropped under the next request. */
const lastOnSocket = new WeakMap<object, string>();

function send(base: URL, agent: Agent, c: HttpCase, ms = 30_000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    let previous: string | undefined;
    const req = httpRequest({ host: base.hostname, port: base.port, method: c.method, path: c.path, headers: c.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no complete answer within ${ms} ms`));
    }, ms);
    req.on('socket', (socket) => {
      previous = lastOnSocket.get(socket);
      lastOnSocket.set(socket, `${c.method} ${c.path.slice(0, 80)} ${JSON.stringify(c.headers).slice(0, 120)} ${c.label.slice(0, 120)}`);
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(Object.assign(err, { previous }));
    });
    req.end(c.body);
  });
}

/** Writes raw bytes, half-closes, and returns every status line the server answered with. */
function sendRaw(base: URL, bytes: Buffer, ms = 15_000): Promise<{ statuses: number[]; text: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ host: base.hostname, port: Number(base.port) });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, ms);
    socket.on('connect', () => socket.end(bytes));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1])), text, timedOut });
    });
  });
}

/** Server-side failures inside a 200 stream (SSE) or a WebSocket event. */
const streamedServerError = /"(?:type|code)":"server_error"/;

test('fuzz: thousands of hostile HTTP requests and WebSocket frames get no 5xx and leave the server as it was', { timeout: 240_000 }, async (t) => {
  const server = await startServer({ FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '512' }, `${noClientLimits}responses:\n  compactionMaxTokens: 16\nwebsocket:\n  maxMessagesPerSecond: 0\n`);
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  t.after(async () => {
    agent.destroy();
    await server.close();
  });
  const base = new URL(server.url);
  const startedAt = Date.now();
  const workerPid = server.app.pool.liveWorkers[0].pid;
  assert.ok(workerPid);

  // A few real response ids, so previous_response_id and the :id routes also see ids that exist.
  const knownIds: string[] = [];
  for (const store of [true, true, false]) {
    const r = await server.client.responses.create({ model: server.app.scheduler.model!.id, input: 'seed', max_output_tokens: 2, store });
    knownIds.push(r.id);
  }

  const statuses = new Map<number, number>();
  const fiveXx: string[] = [];
  const hangs: string[] = [];
  const dropped: string[] = [];
  /** Answers on the other protocols' routes that are not what their protocol says (envelope, shape, stream end). */
  const wrongAnswers: string[] = [];
  const durations: Array<[number, string]> = [];
  let raws = 0;
  let protocolCases = 0;
  const model = server.app.scheduler.model!.id;
  // FLINT_FUZZ_TRACE=<file>: one JSON line per HTTP case (label, status, start of the answer).
  const trace: string[] | undefined = process.env.FLINT_FUZZ_TRACE ? [] : undefined;

  // A worker that dies takes the requests in flight with it and the next ones get 503 until it is
  // back: name the requests in flight when that is first seen, the likely culprits.
  const inFlight = new Map<number, string>();
  const crashes: string[] = [];
  let lastPid: number | undefined = workerPid;
  const noticeCrash = (i: number) => {
    const pid = server.app.pool.liveWorkers[0]?.pid;
    if (pid === lastPid) return;
    lastPid = pid;
    if (pid === undefined && crashes.length < 10) crashes.push(`worker down when #${i} ended; in flight: ${[...inFlight].map(([k, l]) => `#${k} ${l.slice(0, 700)}`).join(' | ')}`);
  };

  const runCase = async (i: number): Promise<void> => {
    const rng = new Rng(caseSeed(SEED, i));
    const began = Date.now();
    // About 3% go over a raw socket, for what an HTTP client refuses to send.
    if (rng.chance(0.03)) {
      raws++;
      const raw = rawHttpCase(rng);
      const res = await sendRaw(base, raw.bytes);
      for (const status of res.statuses) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (res.statuses.some((s) => s >= 500) || streamedServerError.test(res.text)) fiveXx.push(`#${i} ${raw.label}: ${res.statuses.join(',')} ${JSON.stringify(res.text.slice(0, 300))} request ${showBytes(raw.bytes)}`);
      if (res.timedOut) hangs.push(`#${i} ${raw.label}: no close within 15 s; got ${JSON.stringify(res.text.slice(0, 200))}`);
      durations.push([Date.now() - began, raw.label]);
      return;
    }
    const pc: ProtocolCase | undefined = rng.chance(PROTOCOL_SHARE) ? protocolCase(rng, model) : undefined;
    const c: HttpCase = pc ?? httpCase(rng, knownIds);
    if (pc) protocolCases++;
    inFlight.set(i, `${c.path.slice(0, 60)} body ${showBytes(c.body, 600)}`);
    try {
      const res = await send(base, agent, c);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const text = res.body.toString('utf8');
      trace?.push(JSON.stringify({ i, label: c.label.slice(0, 300), status: res.status, answer: text.slice(0, 300) }));
      const report = () => `#${i} ${c.method} ${c.path.slice(0, 120)} ${c.label}: ${res.status} ${JSON.stringify(text.slice(0, 300))} headers ${JSON.stringify(c.headers).slice(0, 200)} body ${showBytes(c.body)}`;
      if (pc) {
        const problem = checkProtocolAnswer(pc, res);
        if (problem) (res.status >= 500 ? fiveXx : wrongAnswers).push(`${problem}: ${report()}`);
      } else if (res.status >= 500 || (res.status === 200 && streamedServerError.test(text))) fiveXx.push(report());
    } catch (err) {
      // A refused body is answered (with Connection: close where the server will not read on), so
      // the client never sees a connection dropped under a request: that would hit innocent
      // requests reusing the keep-alive connection too.
      if (/no complete answer/.test(String(err))) hangs.push(`#${i} ${c.method} ${c.path.slice(0, 120)} ${c.label}: ${String(err)} body ${showBytes(c.body)}`);
      else dropped.push(`#${i} ${c.method} ${c.path.slice(0, 120)} ${c.label.slice(0, 200)}: ${String(err)}; the connection's previous request: ${(err as { previous?: string }).previous ?? '(none: a new connection)'}`);
      statuses.set(-1, (statuses.get(-1) ?? 0) + 1);
      trace?.push(JSON.stringify({ i, label: c.label.slice(0, 300), status: -1, answer: String(err) }));
    } finally {
      noticeCrash(i);
      inFlight.delete(i);
    }
    durations.push([Date.now() - began, c.label]);
  };

  // Warm-up (lazy compilation, caches, the store's statements), then the heap baseline.
  const gc = gcFunction();
  const warmup = 150;
  await pool(warmup, 16, runCase);
  const heapBefore = await heapAfterGc(gc);

  await pool(HTTP_CASES - warmup, 16, (i) => runCase(i + warmup));
  const httpMs = Date.now() - startedAt;

  // WebSocket: four sockets, batches of frames, each batch followed by a barrier: a generate:false
  // create runs after everything queued before it on that socket, so no socket ever queues more
  // than 11 responses (the limit is 16) and every frame got its answer before the next batch.
  const wsStartedAt = Date.now();
  const wsFiveXx: string[] = [];
  const closeCodes = new Map<number, number>();
  let wsFramesSent = 0;
  let wsReplies = 0;
  let wsReopens = 0;
  const wsUrl = `${server.url.replace('http', 'ws')}/v1/responses`;
  const socketRun = async (socketIndex: number): Promise<void> => {
    const quota = WS_FRAMES / 4;
    const labels = new Map<string, string>();
    let batchLabels: string[] = [];
    /** The stream_ids of the frames sent so far in this batch: later frames may join or cancel their lanes. */
    let lanes: string[] = [];
    let waiter: { id: string; resolve: () => void } | undefined;
    let closed: Promise<number>;
    let ws!: WebSocket;
    const open = async () => {
      ws = new WebSocket(wsUrl);
      ws.on('error', () => undefined);
      closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.on('message', (data, isBinary) => {
        wsReplies++;
        const text = String(data);
        let event: { type?: string; status?: number; stream_id?: string; response?: { error?: { code?: string } } };
        try {
          event = JSON.parse(text) as typeof event;
        } catch {
          wsFiveXx.push(`socket ${socketIndex}: a server frame is not JSON (binary ${isBinary}): ${JSON.stringify(text.slice(0, 200))}`);
          return;
        }
        const source = (event.stream_id && labels.get(event.stream_id)) || `one of [${batchLabels.join(' | ')}]`;
        if ((event.type === 'error' && (event.status ?? 0) >= 500) || (event.type === 'response.failed' && streamedServerError.test(text))) {
          wsFiveXx.push(`socket ${socketIndex}: ${JSON.stringify(text.slice(0, 300))} after ${source}`);
        }
        // Events carry the stream_id of the lane they belong to, exactly as sent; one past the bound (or not a string) is never echoed.
        if (event.stream_id !== undefined && !labels.has(event.stream_id) && !event.stream_id.startsWith('sync-')) {
          wsFiveXx.push(`socket ${socketIndex}: an event on a lane no frame opened (${JSON.stringify(String(event.stream_id).slice(0, 80))}, ${String(event.stream_id).length} chars): ${JSON.stringify(text.slice(0, 200))} after one of [${batchLabels.join(' | ')}]`);
        }
        if (waiter && event.stream_id === waiter.id && ['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(event.type ?? '')) waiter.resolve();
      });
      await once(ws, 'open');
    };
    await open();
    let barrier = 0;
    for (let sent = 0; sent < quota; ) {
      batchLabels = [];
      lanes = [];
      let expectClose: number | undefined;
      const size = Math.min(quota - sent, 1 + ((socketIndex * 7919 + sent) % 10));
      for (let k = 0; k < size; k++, sent++) {
        const tag = `f${socketIndex}-${sent}`;
        const frame: WsFrame = wsFrame(new Rng(caseSeed(SEED + 1 + socketIndex, sent)), tag, knownIds, lanes);
        const lane = frame.streamId ?? tag;
        labels.set(lane, `frame ${tag} ${frame.label}`);
        if (!lanes.includes(lane)) lanes.push(lane);
        batchLabels.push(`${tag} ${frame.label}`);
        ws.send(frame.data, { binary: frame.isBinary });
        wsFramesSent++;
        if (frame.closesSocket) {
          expectClose = frame.closesSocket;
          sent++;
          break;
        }
      }
      if (expectClose) {
        const code = await closed!;
        closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
        if (code !== expectClose) wsFiveXx.push(`socket ${socketIndex}: closed ${code} (expected ${expectClose}) after [${batchLabels.join(' | ')}]`);
        wsReopens++;
        await open();
        continue;
      }
      const id = `sync-${socketIndex}-${barrier++}`;
      const answered = new Promise<'answered'>((resolve) => (waiter = { id, resolve: () => resolve('answered') }));
      ws.send(JSON.stringify({ type: 'response.create', generate: false, store: false, input: 'sync', stream_id: id }));
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref());
      const outcome = await Promise.race([answered, closed!.then((code) => `closed ${code}`), timeout]);
      waiter = undefined;
      if (outcome !== 'answered') {
        wsFiveXx.push(`socket ${socketIndex}: barrier ${id} not answered (${outcome}) after [${batchLabels.join(' | ')}]`);
        if (outcome.startsWith('closed')) {
          const code = Number(outcome.split(' ')[1]);
          closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
          wsReopens++;
          await open();
        } else break;
      }
    }
    ws.close(1000);
    const code = await closed!;
    closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
  };
  await Promise.all([0, 1, 2, 3].map(socketRun));
  const wsMs = Date.now() - wsStartedAt;

  const state = await until(() => slotState(server), idle, 'slots, queue and sockets to be idle after the fuzz');
  const heapAfter = await heapAfterGc(gc);
  const health = await fetch(`${server.url}/health`);
  const metrics = await scrape(server.url);

  if (trace) writeFileSync(process.env.FLINT_FUZZ_TRACE!, `${trace.join('\n')}\n`);
  durations.sort((a, b) => b[0] - a[0]);
  t.diagnostic(
    `fuzz seed ${SEED}: ${HTTP_CASES} HTTP cases (${raws} raw, ${protocolCases} on the Anthropic, Ollama and /infill routes) in ${httpMs} ms; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; ` +
      `5xx ${fiveXx.length}; wrong answers ${wrongAnswers.length}; hangs ${hangs.length}; dropped ${dropped.length}; slowest ${durations.slice(0, 3).map(([ms, l]) => `${ms} ms ${l.slice(0, 80)}`).join(' / ')}`,
  );
  t.diagnostic(`ws: ${wsFramesSent} frames on 4 sockets (${wsReopens} reopens) in ${wsMs} ms; ${wsReplies} server events; close codes ${JSON.stringify(Object.fromEntries(closeCodes))}; 5xx/unexpected ${wsFiveXx.length}`);
  t.diagnostic(`heap ${(heapBefore / MiB).toFixed(1)} -> ${(heapAfter / MiB).toFixed(1)} MiB; slots ${JSON.stringify(state)}; worker ${workerPid} -> ${server.app.pool.liveWorkers[0]?.pid}`);

  // 503s while the worker is down follow from a crash reported above them: listed last.
  const isCascade = (line: string) => /server_unavailable|workers up|worker stopped/.test(line);
  const sections = [
    `${crashes.length} worker crashes seen during the HTTP cases (restarts in all: ${valueOf(metrics, 'flint_worker_restarts_total')}):\n${crashes.join('\n')}`,
    `${fiveXx.length} HTTP 5xx (or server_error in a stream), ${fiveXx.filter(isCascade).length} of them 503 while the worker was down:\n${[...fiveXx.filter((l) => !isCascade(l)), ...fiveXx.filter(isCascade)].slice(0, 25).join('\n')}`,
    `${wrongAnswers.length} answers on the Anthropic, Ollama and /infill routes not in their protocol's envelope or framing:\n${wrongAnswers.slice(0, 25).join('\n')}`,
    `${hangs.length} requests never answered:\n${hangs.slice(0, 25).join('\n')}`,
    `${dropped.length} requests whose connection was dropped without an answer:\n${dropped.slice(0, 25).join('\n')}`,
    `${wsFiveXx.length} WebSocket server errors or unexpected closes:\n${[...wsFiveXx.filter((l) => !isCascade(l)), ...wsFiveXx.filter(isCascade)].slice(0, 25).join('\n')}`,
  ];
  assert.equal(crashes.length + fiveXx.length + wrongAnswers.length + hangs.length + dropped.length + wsFiveXx.length, 0, sections.join('\n\n'));
  assert.equal(health.status, 200);
  assert.equal(server.app.pool.liveWorkers[0]?.pid, workerPid, 'the worker was not replaced');
  assert.equal(valueOf(metrics, 'flint_worker_restarts_total'), 0);
  assert.equal(valueOf(metrics, 'flint_requests_total', { status: '500' }), 0);
  assert.ok(heapAfter - heapBefore < 64 * MiB, `heap grew by ${((heapAfter - heapBefore) / MiB).toFixed(1)} MiB`);
  // And it still serves.
  const after = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'after the fuzz' }], max_tokens: 4 });
  assert.equal(after.choices[0].finish_reason, 'length');
  // So do the other protocols' routes, each with its normal answer.
  const json = { 'content-type': 'application/json' };
  const others: Array<[string, object, (reply: Record<string, unknown>) => unknown]> = [
    ['/v1/messages', { model, max_tokens: 2, messages: [{ role: 'user', content: 'after the fuzz' }] }, (r) => r.stop_reason],
    ['/api/chat', { model, stream: false, options: { num_predict: 2 }, messages: [{ role: 'user', content: 'after the fuzz' }] }, (r) => r.done_reason],
    ['/infill', { input_prefix: 'def after(', input_suffix: '\n', n_predict: 2 }, (r) => r.stop_type],
  ];
  for (const [path, body, reason] of others) {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: json, body: JSON.stringify(body) });
    assert.equal(res.status, 200, path);
    assert.equal(reason((await res.json()) as Record<string, unknown>), path === '/v1/messages' ? 'max_tokens' : path === '/api/chat' ? 'length' : 'limit', path);
  }
});

/** A client's WebSocket text frame, masked with a zero key (so the payload goes as is). */
function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([Buffer.from([0x81]), length, Buffer.alloc(4), payload]);
}

/** A client's close frame with code 1000. */
const clientCloseFrame = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

interface HandshakeResult {
  status: number;
  headers: Map<string, string>;
  /** What followed the head: an error body, or (after a 101) the server's frames. */
  rest: string;
  timedOut: boolean;
}

/** Writes a handshake on a raw socket; after a 101, one generate:false create until its answer, then a close. */
function sendHandshake(base: URL, c: HandshakeCase, ms = 15_000): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: base.hostname, port: Number(base.port) });
    let buffer = Buffer.alloc(0);
    let head: { status: number; headers: Map<string, string> } | undefined;
    let isClosing = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, ms);
    socket.on('connect', () => socket.write(Buffer.from(`GET ${c.path} HTTP/1.1\r\n${c.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1')));
    socket.on('data', (d: Buffer) => {
      buffer = Buffer.concat([buffer, d]);
      if (!head) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const [statusLine, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
        head = { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0), headers };
        buffer = buffer.subarray(end + 4);
        if (head.status === 101) socket.write(clientTextFrame(JSON.stringify({ type: 'response.create', generate: false, store: false, input: 'handshake', stream_id: 'h' })));
      }
      if (head.status === 101 && !isClosing && /"type":"(?:response\.completed|error)"/.test(buffer.toString('latin1'))) {
        isClosing = true;
        socket.write(clientCloseFrame);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: head?.status ?? 0, headers: head?.headers ?? new Map(), rest: buffer.toString('latin1'), timedOut });
    });
  });
}

/** Why a handshake's answer is not what `c` expects, or undefined. */
function handshakeProblem(c: HandshakeCase, res: HandshakeResult): string | undefined {
  if (res.timedOut) return 'no close within 15 s';
  const offered = res.headers.get('sec-websocket-protocol');
  if (offered?.includes('insecure-api-key')) return `the 101 echoes a key: ${offered}`;
  if (c.expect === 'refused') return res.status >= 400 && res.status < 500 ? undefined : `status ${res.status}, expected a 4xx refusal`;
  if (res.status !== c.expect) return `status ${res.status}, expected ${c.expect}`;
  if (c.expect !== 101) {
    let body: unknown;
    try {
      body = JSON.parse(res.rest);
    } catch {
      return `a refusal that is not JSON: ${JSON.stringify(res.rest.slice(0, 200))}`;
    }
    return envelopeProblem('openai', res.status, body);
  }
  if (offered !== c.protocol) return `subprotocol ${String(offered)}, expected ${String(c.protocol)}`;
  return /"type":"response\.completed"/.test(res.rest) ? undefined : `the socket's first response did not complete: ${JSON.stringify(res.rest.slice(0, 300))}`;
}

test('fuzz: API keys (Authorization, x-api-key, subprotocol) and WebSocket handshakes (session names, subprotocols, Origin) get exactly the answer their rules give', { timeout: 90_000 }, async (t) => {
  const keys: FuzzKeys = { valid: 'sk-fuzz-valid', other: 'sk-fuzz-other' };
  const server = await startServer({ FLINT_SLOTS: '1', FLINT_CONTEXT_SIZE: '512', FLINT_API_KEYS: keys.valid }, `${noClientLimits}websocket:\n  maxMessagesPerSecond: 0\n`);
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.after(async () => {
    agent.destroy();
    await server.close();
  });
  const base = new URL(server.url);
  const model = server.app.scheduler.model!.id;
  const workerPid = server.app.pool.liveWorkers[0].pid;
  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
  const startedAt = Date.now();
  // Case i draws from new Rng(caseSeed(SEED + 7, i)): handshakes first, then keyed requests.
  await pool(HANDSHAKE_CASES + KEYED_CASES, 8, async (i) => {
    const rng = new Rng(caseSeed(SEED + 7, i));
    if (i < HANDSHAKE_CASES) {
      const c = handshakeCase(rng, keys);
      const res = await sendHandshake(base, c);
      count(`ws ${res.status}`);
      const problem = handshakeProblem(c, res);
      if (problem) problems.push(`handshake #${i} ${c.label}: ${problem}; request GET ${c.path.slice(0, 100)} ${JSON.stringify(c.headers).slice(0, 400)}; answer ${res.status} ${JSON.stringify(res.rest.slice(0, 200))}`);
      return;
    }
    const c = keyedCase(rng, keys, model);
    try {
      const res = await send(base, agent, c);
      count(`${c.protocol} ${res.status}`);
      const problem = checkProtocolAnswer(c, res);
      if (problem) problems.push(`keyed #${i} ${c.method} ${c.path} ${c.label}: ${problem}; answer ${JSON.stringify(res.body.toString('utf8').slice(0, 300))}`);
    } catch (err) {
      problems.push(`keyed #${i} ${c.method} ${c.path} ${c.label}: ${String(err)}`);
    }
  });
  const state = await until(() => slotState(server), idle, 'slots, queue and sockets to be idle after the handshakes');
  t.diagnostic(`keys and handshakes: ${HANDSHAKE_CASES} handshakes and ${KEYED_CASES} keyed requests in ${Date.now() - startedAt} ms; ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}; problems ${problems.length}; slots ${JSON.stringify(state)}`);
  assert.deepEqual(problems.slice(0, 25), []);
  assert.equal(server.app.pool.liveWorkers[0]?.pid, workerPid, 'the worker was not replaced');
  const failures = (await server.app.metrics.requests.get()).values.filter((v) => Number(v.labels.status) >= 500);
  assert.deepEqual(failures, []);
  // And it still serves: a request with the key, and a socket that presents it as a subprotocol.
  const after = await server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'after the handshakes' }], max_tokens: 2 });
  assert.equal(after.choices[0].finish_reason, 'length');
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses?session=after-fuzz`, ['flint', `flint-insecure-api-key.${keys.valid}`]);
  await once(ws, 'open');
  assert.equal(ws.protocol, 'flint');
  const terminal = await new Promise<string>((resolve) => {
    ws.on('message', (data) => {
      const type = (JSON.parse(String(data)) as { type: string }).type;
      if (['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(type)) resolve(type);
    });
    ws.send(JSON.stringify({ type: 'response.create', model, input: 'ws after the handshakes', max_output_tokens: 2, store: false }));
  });
  ws.close();
  await once(ws, 'close');
  assert.equal(terminal, 'response.incomplete');
  await until(() => slotState(server), idle, 'the check requests to finish');
});

test('disconnect storm: 300 clients vanishing while queued, in prefill, mid-stream and on WebSockets leak no slot', { timeout: 120_000 }, async (t) => {
  const server = await startServer({ FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '4096' }, `${noClientLimits}scheduler:\n  maxQueueLength: 32\n`);
  t.after(() => server.close());
  const base = new URL(server.url);
  const wsUrl = `${server.url.replace('http', 'ws')}/v1/responses`;
  const model = server.app.scheduler.model!.id;
  const workerPid = server.app.pool.liveWorkers[0].pid;
  const rng = new Rng(caseSeed(SEED, 1_000_000));
  const kinds = new Map<string, number>();
  const statuses = new Map<number, number>();
  const stuck: string[] = [];
  // A prompt of ~0.7-2k tokens that no slot holds yet, so it is evaluated for real.
  const medium = (i: number) => `${i} ${rng.int(1e9)} ${'Explain this code: function f(x) { return x * 2 } '.repeat(rng.range(60, 160))}`;
  type StormApi = 'chat' | 'responses' | 'messages' | 'ollama' | 'infill';
  const body = (api: StormApi, tokens: number, stream: boolean, prompt: string) => {
    const messages = [{ role: 'user', content: prompt }];
    switch (api) {
      case 'chat':
        return JSON.stringify({ model, messages, max_tokens: tokens, temperature: 1, stream });
      case 'responses':
        return JSON.stringify({ model, input: prompt, max_output_tokens: tokens, temperature: 1, stream, store: rng.chance(0.5) });
      case 'messages':
        return JSON.stringify({ model, messages, max_tokens: tokens, temperature: 1, stream });
      case 'ollama':
        return JSON.stringify({ model, messages, options: { num_predict: tokens, temperature: 1 }, stream });
      default:
        return JSON.stringify({ input_prefix: prompt, input_suffix: '\n', n_predict: tokens, temperature: 1, stream });
    }
  };
  const paths: Record<StormApi, string> = { chat: '/v1/chat/completions', responses: '/v1/responses', messages: '/v1/messages', ollama: '/api/chat', infill: '/infill' };
  const pathOf = (api: StormApi) => paths[api];

  /** fetch, then abort after `chunks` body chunks (0: as soon as the headers arrive) or at `ms`. */
  const fetchAndVanish = async (giveUp: AbortSignal, api: StormApi, payload: string, chunks: number, ms: number | undefined) => {
    const controller = new AbortController();
    giveUp.addEventListener('abort', () => controller.abort());
    const timer = ms === undefined ? undefined : setTimeout(() => controller.abort(), ms);
    try {
      const res = await fetch(`${server.url}${pathOf(api)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload, signal: controller.signal });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (chunks === 0) return controller.abort();
      const reader = res.body!.getReader();
      for (let n = 0; n < chunks; n++) if ((await reader.read()).done) break;
      controller.abort();
    } catch {
      // aborted by us
    } finally {
      clearTimeout(timer);
    }
  };

  /** A raw socket that sends `bytes` and is destroyed right after writing, at the first byte back, or half-way through the body. */
  const rawVanish = (giveUp: AbortSignal, bytes: string, when: 'after-write' | 'first-data' | 'mid-upload') =>
    new Promise<void>((resolve) => {
      const socket = connect({ host: base.hostname, port: Number(base.port) });
      giveUp.addEventListener('abort', () => socket.destroy());
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      socket.on('connect', () => {
        if (when === 'mid-upload') return void socket.write(bytes.slice(0, Math.floor(bytes.length / 2)), () => socket.destroy());
        socket.write(bytes, () => {
          if (when === 'after-write') socket.destroy();
        });
      });
      socket.on('data', () => socket.destroy());
    });
  const rawRequest = (payload: string) => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;

  /** A WebSocket that sends its creates and leaves after `events` server events (0: right after sending), or closes once all are done. */
  const wsVanish = (giveUp: AbortSignal, creates: string[], events: number, how: 'terminate' | 'close') =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(wsUrl);
      giveUp.addEventListener('abort', () => ws.terminate());
      let seen = 0;
      let done = 0;
      const leave = () => (how === 'terminate' ? ws.terminate() : ws.close(1000));
      ws.on('error', () => undefined);
      ws.on('close', () => resolve());
      ws.on('open', () => {
        for (const frame of creates) ws.send(frame);
        if (events === 0) leave();
      });
      ws.on('message', (data) => {
        const type = (JSON.parse(String(data)) as { type: string }).type;
        if (['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(type)) done++;
        if (++seen === events || done === creates.length) leave();
      });
    });

  const clients: Array<() => Promise<void>> = [];
  for (let i = 0; i < 300; i++) {
    const kind = rng.pick(['sse-chat', 'sse-responses', 'non-stream', 'prefill', 'raw-after-write', 'raw-first-data', 'raw-mid-upload', 'ws', 'complete', 'stream-other']);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    // Every random choice is made here, in order, so the storm is the same on every run.
    const chunks = rng.range(0, 8);
    const ms = rng.chance(0.3) ? rng.range(0, 300) : undefined;
    const api = rng.pick(['chat', 'responses'] as const);
    let run: (giveUp: AbortSignal) => Promise<void>;
    switch (kind) {
      case 'sse-chat': {
        const payload = body('chat', 300, true, `client ${i}`);
        run = (g) => fetchAndVanish(g, 'chat', payload, chunks, ms);
        break;
      }
      case 'stream-other': {
        // Anthropic's SSE, Ollama's NDJSON or /infill's SSE, left mid-stream (or, non-streaming, at a time).
        const other = rng.pick(['messages', 'ollama', 'infill'] as const);
        const payload = body(other, 300, rng.chance(0.8), `client ${i}`);
        run = (g) => fetchAndVanish(g, other, payload, chunks, ms);
        break;
      }
      case 'sse-responses': {
        const payload = body('responses', 300, true, `client ${i}`);
        run = (g) => fetchAndVanish(g, 'responses', payload, chunks, ms);
        break;
      }
      case 'non-stream': {
        const payload = body(api, 300, false, `client ${i}`);
        const at = rng.range(0, 300);
        run = (g) => fetchAndVanish(g, api, payload, 1, at);
        break;
      }
      case 'prefill': {
        // Gone within ~0-60 ms: mostly while queued or while its prompt is evaluated.
        const payload = body(api, 50, rng.chance(0.5), medium(i));
        const n = rng.range(0, 2);
        const at = rng.range(0, 60);
        run = (g) => fetchAndVanish(g, api, payload, n, at);
        break;
      }
      case 'raw-after-write': {
        const bytes = rawRequest(body('chat', 300, rng.chance(0.5), `client ${i}`));
        run = (g) => rawVanish(g, bytes, 'after-write');
        break;
      }
      case 'raw-first-data': {
        const bytes = rawRequest(body('chat', 300, true, `client ${i}`));
        run = (g) => rawVanish(g, bytes, 'first-data');
        break;
      }
      case 'raw-mid-upload': {
        const bytes = rawRequest(body('chat', 300, false, medium(i)));
        run = (g) => rawVanish(g, bytes, 'mid-upload');
        break;
      }
      case 'ws': {
        const creates = Array.from({ length: rng.range(1, 3) }, (_, k) => JSON.stringify({ type: 'response.create', model, input: k === 0 && rng.chance(0.3) ? medium(i) : `ws ${i} ${k}`, max_output_tokens: 300, temperature: 1 }));
        const events = rng.range(0, 6);
        const how = rng.chance(0.7) ? 'terminate' : 'close';
        run = (g) => wsVanish(g, creates, events, how);
        break;
      }
      default: {
        const payload = body(api, 8, false, `client ${i}`);
        run = async (g) => {
          const res = await fetch(`${server.url}${pathOf(api)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload, signal: g });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          await res.arrayBuffer();
        };
      }
    }
    // A client still there after 30 s means the server never answered or closed: counted, then cut off.
    clients.push(async () => {
      const giveUp = new AbortController();
      const timer = setTimeout(() => {
        stuck.push(`client ${i} (${kind})`);
        giveUp.abort();
      }, 30_000);
      try {
        await run(giveUp.signal);
      } catch {
        // only the 30 s cut-off gets here
      } finally {
        clearTimeout(timer);
      }
    });
  }
  const startedAt = Date.now();
  let peak = { busy: 0, queued: 0, sockets: 0 };
  let storming = true;
  const sampler = (async () => {
    while (storming) {
      const now = await slotState(server);
      peak = { busy: Math.max(peak.busy, now.busy), queued: Math.max(peak.queued, now.queued), sockets: Math.max(peak.sockets, now.sockets) };
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  // 40 at a time: more than 2 slots plus 32 queued, so the queue fills and refusals happen too.
  await pool(clients.length, 40, (i) => clients[i]());
  storming = false;
  await sampler;
  const stormMs = Date.now() - startedAt;
  const drainStart = Date.now();
  const state = await until(() => slotState(server), idle, 'every slot, queue entry and socket to be released');
  const drainMs = Date.now() - drainStart;
  const outcomes = Object.fromEntries(
    (await server.app.metrics.requests.get()).values.map((v) => [`${v.labels.api}/${v.labels.status}/${v.labels.outcome}`, v.value]),
  );
  t.diagnostic(
    `storm: ${clients.length} clients ${JSON.stringify(Object.fromEntries(kinds))} in ${stormMs} ms; peak ${JSON.stringify(peak)}; statuses seen ${JSON.stringify(Object.fromEntries(statuses))}; ` +
      `server outcomes ${JSON.stringify(outcomes)}; idle ${drainMs} ms after the last client: ${JSON.stringify(state)}; stuck ${stuck.length}`,
  );

  assert.deepEqual(stuck, [], 'clients the server never answered nor closed');
  assert.equal(server.app.pool.liveWorkers[0]?.pid, workerPid, 'the worker was not replaced');
  // Both slots serve, then a stream and a WebSocket turn.
  const [a, b] = await Promise.all([0, 1].map((k) => server.client.chat.completions.create({ model, messages: [{ role: 'user', content: `after ${k}` }], max_tokens: 8 })));
  assert.equal(a.usage!.completion_tokens, 8);
  assert.equal(b.usage!.completion_tokens, 8);
  const stream = await server.client.responses.create({ model, input: 'after the storm', max_output_tokens: 8, stream: true });
  let terminal = '';
  for await (const event of stream) terminal = event.type;
  assert.equal(terminal, 'response.incomplete');
  const ws = new WebSocket(wsUrl);
  await once(ws, 'open');
  const types: string[] = [];
  await new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const type = (JSON.parse(String(data)) as { type: string }).type;
      types.push(type);
      if (['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(type)) resolve();
    });
    ws.send(JSON.stringify({ type: 'response.create', model, input: 'ws after the storm', max_output_tokens: 4 }));
  });
  ws.close();
  assert.equal(types.at(-1), 'response.incomplete', types.join(','));
  const metrics = await scrape(server.url);
  assert.equal(valueOf(metrics, 'flint_requests_total', { status: '500' }), 0);
  assert.ok(valueOf(metrics, 'flint_requests_total', { outcome: 'cancelled' }) > 50, 'most clients were seen to leave');
  await until(() => slotState(server), idle, 'the check requests to finish');
});

/** VmRSS of a process in bytes. */
function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

/** The worker processes of a gateway (its children). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('overload at 10x capacity: the queue stays at its limit, the rest get 503 server_overloaded with Retry-After, RSS stays flat', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-overload-'));
  const config = path.join(dir, 'flint.yaml');
  writeFileSync(config, `${noClientLimits}scheduler:\n  maxQueueLength: 4\n`);
  const server = await spawnServer(['--config', config, '--model', await tinyModelPath()], { FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '1024', FLINT_DATA_DIR: dir });
  const gatewayPid = server.child.pid!;
  const workers = childrenOf(gatewayPid);
  t.after(async () => {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      const exited = once(server.child, 'exit');
      server.child.kill('SIGTERM');
      const killer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    // The gateway stops its worker on the way out.
    for (const pid of workers) await until(async () => existsSync(`/proc/${pid}`), (alive) => !alive, `worker ${pid} to exit`, 10_000);
  });
  const json = { 'content-type': 'application/json' };
  const kinds = ['chat', 'chat-stream', 'completions', 'responses', 'responses-stream'] as const;
  const requestOf = (kind: (typeof kinds)[number], i: number, tokens: number): [string, string] => {
    switch (kind) {
      case 'chat':
      case 'chat-stream':
        return ['/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: `overload ${i}` }], max_tokens: tokens, temperature: 1, stream: kind === 'chat-stream' })];
      case 'completions':
        return ['/v1/completions', JSON.stringify({ prompt: `def f${i}(`, max_tokens: tokens, temperature: 1 })];
      default:
        return ['/v1/responses', JSON.stringify({ input: `overload ${i}`, max_output_tokens: tokens, temperature: 1, store: false, stream: kind === 'responses-stream' })];
    }
  };
  // Warm up every route before the baseline.
  for (const kind of kinds) {
    const [p, b] = requestOf(kind, -1, 50);
    assert.equal((await fetch(`${server.url}${p}`, { method: 'POST', headers: json, body: b }).then(async (r) => (await r.text(), r))).status, 200);
  }
  const rssBefore = rssOf(gatewayPid);
  let rssPeak = rssBefore;
  let maxQueue = 0;
  let maxBusy = 0;
  let samples = 0;
  let sampling = true;
  t.after(() => (sampling = false));
  const sampler = (async () => {
    while (sampling) {
      const m = await scrape(server.url);
      maxQueue = Math.max(maxQueue, valueOf(m, 'flint_queue_depth'));
      maxBusy = Math.max(maxBusy, valueOf(m, 'flint_slots_busy'));
      rssPeak = Math.max(rssPeak, rssOf(gatewayPid));
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })().catch((err: unknown) => {
    if (sampling) throw err;
  });

  const startedAt = Date.now();
  const tokens = 300;
  let accepted = 0;
  let refused = 0;
  const problems: string[] = [];
  for (let wave = 0; wave < 3; wave++) {
    let waveAccepted = 0;
    await Promise.all(
      Array.from({ length: 60 }, async (_, k) => {
        const kind = kinds[k % kinds.length];
        const [p, b] = requestOf(kind, wave * 100 + k, tokens);
        const res = await fetch(`${server.url}${p}`, { method: 'POST', headers: json, body: b });
        const text = await res.text();
        if (res.status === 503) {
          refused++;
          const error = (JSON.parse(text) as { error?: { code?: string; type?: string; param?: unknown; message?: string } }).error;
          const retryAfter = res.headers.get('retry-after');
          if (!(Number(retryAfter) >= 1) || error?.code !== 'server_overloaded' || error.type !== 'service_unavailable_error' || error.param !== null || !/try again in \d+s/.test(error.message ?? '')) {
            problems.push(`${kind}: 503 with retry-after ${retryAfter} and ${text.slice(0, 200)}`);
          }
          return;
        }
        if (res.status !== 200) return void problems.push(`${kind}: ${res.status} ${text.slice(0, 200)}`);
        accepted++;
        waveAccepted++;
        if (kind.endsWith('stream')) {
          const ok = kind === 'chat-stream' ? /"finish_reason":"length"[\s\S]*data: \[DONE\]/.test(text) : /event: response\.incomplete/.test(text);
          if (!ok) problems.push(`${kind}: stream did not end with its terminal event: ${text.slice(-200)}`);
        } else {
          const usage = (JSON.parse(text) as { usage?: { completion_tokens?: number; output_tokens?: number } }).usage;
          if ((usage?.completion_tokens ?? usage?.output_tokens) !== tokens) problems.push(`${kind}: usage ${JSON.stringify(usage)}`);
        }
      }),
    );
    if (waveAccepted < 6) problems.push(`wave ${wave}: only ${waveAccepted} accepted with 2 slots and a queue of 4`);
  }
  const overloadMs = Date.now() - startedAt;
  sampling = false;
  await sampler;
  const rssAfter = rssOf(gatewayPid);
  const metrics = await scrape(server.url);
  t.diagnostic(
    `overload: 180 requests in 3 waves of 60 in ${overloadMs} ms; accepted ${accepted}, refused ${refused}; max queue ${maxQueue}, max busy ${maxBusy} over ${samples} samples; ` +
      `gateway RSS ${(rssBefore / MiB).toFixed(1)} -> peak ${(rssPeak / MiB).toFixed(1)} -> ${(rssAfter / MiB).toFixed(1)} MiB` +
      (workers.length > 0 && existsSync(`/proc/${workers[0]}`) ? `; worker RSS ${(rssOf(workers[0]) / MiB).toFixed(1)} MiB` : ''),
  );
  assert.deepEqual(problems, []);
  assert.equal(accepted + refused, 180);
  assert.ok(refused > 0, 'some were refused');
  assert.ok(maxQueue <= 4, `queue reached ${maxQueue}`);
  assert.ok(maxBusy <= 2, `busy slots reached ${maxBusy}`);
  assert.equal(valueOf(metrics, 'flint_requests_total', { status: '503' }), refused, 'the server counted each refusal');
  assert.equal(valueOf(metrics, 'flint_queue_depth'), 0);
  assert.equal(valueOf(metrics, 'flint_slots_busy'), 0);
  assert.ok(rssPeak - rssBefore < 100 * MiB, `gateway RSS grew by ${((rssPeak - rssBefore) / MiB).toFixed(1)} MiB`);
});

// kill -9 of the gateway after stored responses is covered by responsesPersistence.test.ts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/startServer.js';

// Lanes (responses of different stream_ids on one socket run at once, each on its own slot),
// forks onto another lane, and sessions that outlive their socket (websocket.resumeGraceMs).
const keys = ['sk-lanes-one', 'sk-lanes-two'];
let server: TestServer;
let model: string;

before(async () => {
  server = await startServer(
    { FLINT_SLOTS: '3', FLINT_CONTEXT_SIZE: '4096', FLINT_API_KEYS: keys.join(',') },
    'websocket:\n  maxConcurrentLanes: 2\n  resumeGraceMs: 1500\n',
  );
  model = server.app.scheduler.model!.id;
});
after(() => server.close());

type Event = { type: string; stream_id?: string; response?: Response; error?: { code: string }; [key: string]: unknown };
type Response = { id: string; status: string; usage: { input_tokens: number; output_tokens: number; input_tokens_details: { cached_tokens: number } } };

/** A raw Responses WebSocket (the `ws` package): every server event, in order. */
class Socket {
  readonly events: Event[] = [];
  readonly #ws: WebSocket;
  #wake: (() => void) | undefined;
  closed = false;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      this.events.push(JSON.parse(data.toString()) as Event);
      this.#wake?.();
    });
    ws.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  static open(options: { key?: string; headers?: Record<string, string>; query?: string } = {}): Promise<Socket> {
    const url = `${server.url.replace(/^http/, 'ws')}/v1/responses${options.query ?? ''}`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${options.key ?? keys[0]}`, ...options.headers } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Socket(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(event: Record<string, unknown>): void {
    this.#ws.send(JSON.stringify(event));
  }

  /** Waits until `predicate` holds for the events so far (30 s at most). */
  async until(predicate: (events: Event[]) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!predicate(this.events)) {
      if (this.closed) throw new Error(`socket closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within 30 s; events: ${this.events.map((e) => `${e.stream_id ?? '-'}:${e.type}`).join(' ')}`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 100).unref();
      });
    }
  }

  /** Index of the terminal event (or error) of lane `streamId`, -1 before it. */
  terminalOf(streamId: string | undefined, from = 0): number {
    return this.events.findIndex((e, i) => i >= from && e.stream_id === streamId && isTerminal(e));
  }

  /** Sends a create on lane `streamId` and waits for its terminal event: the response (or the error event). */
  async turn(body: Record<string, unknown>, streamId?: string): Promise<Event> {
    const from = this.events.length;
    this.send({ type: 'response.create', model, store: false, ...body, ...(streamId ? { stream_id: streamId } : {}) });
    await this.until(() => this.terminalOf(streamId, from) !== -1, `the end of lane ${streamId}`);
    return this.events[this.terminalOf(streamId, from)];
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#ws.once('close', () => resolve());
      this.#ws.close(1000, 'done');
    });
  }
}

const isTerminal = (e: Event) => ['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(e.type);
const user = (text: string) => ({ type: 'message', role: 'user', content: text });
/** About 900 tokens of stable instructions: a prefix worth keeping. */
const instructions = Array.from({ length: 60 }, (_, i) => `Rule ${i}: read the code, change little, run the tests (${i * 7}).`).join('\n');

async function counter(name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${keys[0]}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const selector = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  const line = text.split('\n').find((l) => l.startsWith(selector ? `${name}{${selector}}` : `${name} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('stream_id lanes', () => {
  test('two lanes stream at once, interleaved, and every event carries its stream_id', async () => {
    const socket = await Socket.open();
    try {
      socket.send({ type: 'response.create', model, store: false, input: [user('lane a')], max_output_tokens: 64, stream_id: 'a' });
      socket.send({ type: 'response.create', model, store: false, input: [user('lane b')], max_output_tokens: 64, stream_id: 'b' });
      await socket.until(() => socket.terminalOf('a') !== -1 && socket.terminalOf('b') !== -1, 'both lanes');
      assert.deepEqual([...new Set(socket.events.map((e) => e.stream_id))].sort(), ['a', 'b']);
      const deltas = (lane: string) => socket.events.flatMap((e, i) => (e.stream_id === lane && e.type === 'response.output_text.delta' ? [i] : []));
      const [a, b] = [deltas('a'), deltas('b')];
      assert.ok(a.length > 1 && b.length > 1);
      assert.ok(b[0] < a.at(-1)! && a[0] < b.at(-1)!, `lanes did not overlap: a ${a[0]}..${a.at(-1)}, b ${b[0]}..${b.at(-1)}`);
      for (const lane of ['a', 'b']) assert.equal(socket.events[socket.terminalOf(lane)].response!.usage.output_tokens, 64);
    } finally {
      await socket.close();
    }
  });

  test('a lane beyond maxConcurrentLanes waits until a running lane ends; one lane keeps its order', async () => {
    const socket = await Socket.open();
    try {
      for (const lane of ['a', 'b', 'c']) socket.send({ type: 'response.create', model, store: false, input: [user(`lane ${lane}`)], max_output_tokens: 48, stream_id: lane });
      socket.send({ type: 'response.create', model, store: false, input: [user('lane a, second')], max_output_tokens: 4, stream_id: 'a' });
      await socket.until(() => socket.events.filter(isTerminal).length === 4, 'four responses');
      const created = (lane: string) => socket.events.findIndex((e) => e.stream_id === lane && e.type === 'response.created');
      const firstEnd = Math.min(socket.terminalOf('a'), socket.terminalOf('b'));
      assert.ok(created('c') > firstEnd, 'lane c started only once lane a or b had ended');
      const aEvents = socket.events.filter((e) => e.stream_id === 'a' && (e.type === 'response.created' || isTerminal(e))).map((e) => e.type);
      assert.deepEqual(aEvents, ['response.created', 'response.incomplete', 'response.created', 'response.incomplete'], "lane a's responses ran one after the other");
      assert.ok(socket.events.filter(isTerminal).every((e) => e.type === 'response.incomplete'));
    } finally {
      await socket.close();
    }
  });

  test('response.cancel with a stream_id stops that lane only', async () => {
    const socket = await Socket.open();
    try {
      socket.send({ type: 'response.create', model, store: false, input: [user('long a')], max_output_tokens: 1500, stream_id: 'a' });
      socket.send({ type: 'response.create', model, store: false, input: [user('long b')], max_output_tokens: 400, stream_id: 'b' });
      await socket.until((events) => ['a', 'b'].every((lane) => events.some((e) => e.stream_id === lane && e.type === 'response.output_text.delta')), 'deltas on both lanes');
      socket.send({ type: 'response.cancel', stream_id: 'a' });
      await socket.until(() => socket.terminalOf('a') !== -1 && socket.terminalOf('b') !== -1, 'both lanes');
      const a = socket.events[socket.terminalOf('a')].response!;
      const b = socket.events[socket.terminalOf('b')].response!;
      assert.equal(a.status, 'cancelled');
      assert.ok(a.usage.output_tokens < 1500);
      assert.equal(b.status, 'incomplete');
      assert.equal(b.usage.output_tokens, 400, 'lane b ran to its cap');

      // Without a stream_id, a cancel stops every lane.
      const from = socket.events.length;
      for (const lane of ['a', 'b']) socket.send({ type: 'response.create', model, store: false, input: [user(`again ${lane}`)], max_output_tokens: 1500, stream_id: lane });
      await socket.until((events) => ['a', 'b'].every((lane) => events.some((e, i) => i >= from && e.stream_id === lane && e.type === 'response.output_text.delta')), 'deltas on both lanes');
      socket.send({ type: 'response.cancel' });
      await socket.until(() => socket.terminalOf('a', from) !== -1 && socket.terminalOf('b', from) !== -1, 'both lanes');
      for (const lane of ['a', 'b']) assert.equal(socket.events[socket.terminalOf(lane, from)].response!.status, 'cancelled');
    } finally {
      await socket.close();
    }
  });

  test('a stream_id that is not a short string is refused with an error event; the socket serves on', async () => {
    const socket = await Socket.open();
    try {
      for (const bad of ['x'.repeat(257), 42, '']) {
        const from = socket.events.length;
        socket.send({ type: 'response.create', model, store: false, input: [user('hi')], max_output_tokens: 2, stream_id: bad });
        await socket.until((events) => events.length > from, 'an answer');
        assert.equal(socket.events[from].type, 'error');
        assert.equal(socket.events[from].error!.code, 'invalid_value');
        assert.equal((socket.events[from].error as { param?: string }).param, 'stream_id');
      }
      assert.equal((await socket.turn({ input: [user('still here')], max_output_tokens: 2 }, 'ok')).type, 'response.incomplete');
    } finally {
      await socket.close();
    }
  });

  test("a fork of another lane's response evaluates only its new items, copied from the busy parent slot", async () => {
    const socket = await Socket.open();
    try {
      const root = (await socket.turn({ instructions, input: [user('Start the task.')], max_output_tokens: 8 }, 'a')).response!;
      assert.ok(root.usage.input_tokens > 500);
      const copiedBefore = await counter('flint_prompt_tokens_copied_total');
      // Lane a continues the root at length; once it runs, lane b forks the root.
      socket.send({ type: 'response.create', model, store: false, instructions, previous_response_id: root.id, input: [user('Go on at length.')], max_output_tokens: 600, stream_id: 'a' });
      await socket.until((events) => events.some((e) => e.stream_id === 'a' && e.type === 'response.output_text.delta' && events.indexOf(e) > socket.terminalOf('a')), "lane a's second response");
      const fork = await socket.turn({ instructions, previous_response_id: root.id, input: [user('Try another way.')], max_output_tokens: 4 }, 'b');
      const usage = fork.response!.usage;
      assert.equal(fork.type, 'response.incomplete');
      assert.ok(usage.input_tokens > root.usage.input_tokens + 8);
      // The root's whole prompt came from the cache; what was evaluated is the root's answer and the new message.
      assert.ok(usage.input_tokens_details.cached_tokens >= root.usage.input_tokens, `the fork read ${usage.input_tokens_details.cached_tokens} of ${usage.input_tokens} tokens from the cache`);
      assert.ok(usage.input_tokens - usage.input_tokens_details.cached_tokens <= 40, `the fork evaluated ${usage.input_tokens - usage.input_tokens_details.cached_tokens} of ${usage.input_tokens} tokens`);
      assert.ok((await counter('flint_prompt_tokens_copied_total')) - copiedBefore >= root.usage.input_tokens, 'the shared prefix was copied from the parent slot');
      // lane a was not disturbed: it ran to its cap
      await socket.until(() => socket.events.filter((e) => e.stream_id === 'a' && isTerminal(e)).length === 2, "the end of lane a's second response");
      assert.equal(socket.events.filter((e) => e.stream_id === 'a' && isTerminal(e)).at(-1)!.response!.usage.output_tokens, 600);
    } finally {
      await socket.close();
    }
  });
});

describe('sessions that outlive a socket', () => {
  test('a new socket of the same session and key continues a closed socket\'s response from the cache', async () => {
    const resumedBefore = await counter('flint_websocket_session_resumes_total', { result: 'resumed' });
    const first = await Socket.open({ headers: { 'x-flint-session': 'agent-7f3a' } });
    const root = (await first.turn({ instructions, input: [user('Start the task.')], max_output_tokens: 8 })).response!;
    await first.close();

    // Without the session, or with another key, the response is the closed socket's: not found.
    const stranger = await Socket.open();
    const otherKey = await Socket.open({ key: keys[1], headers: { 'x-flint-session': 'agent-7f3a' } });
    try {
      for (const socket of [stranger, otherKey]) {
        const refused = await socket.turn({ instructions, previous_response_id: root.id, input: [user('Next.')], max_output_tokens: 4 });
        assert.equal(refused.type, 'error');
        assert.equal(refused.error!.code, 'previous_response_not_found');
      }
    } finally {
      await stranger.close();
      await otherKey.close();
    }

    const second = await Socket.open({ headers: { 'x-flint-session': 'agent-7f3a' } });
    try {
      const next = (await second.turn({ instructions, previous_response_id: root.id, input: [user('Next.')], max_output_tokens: 4 })).response!;
      assert.equal(next.status, 'incomplete');
      assert.ok(next.usage.input_tokens_details.cached_tokens >= root.usage.input_tokens, `read ${next.usage.input_tokens_details.cached_tokens} of ${next.usage.input_tokens} tokens from the cache`);
      assert.ok(next.usage.input_tokens - next.usage.input_tokens_details.cached_tokens <= 40, `evaluated ${next.usage.input_tokens - next.usage.input_tokens_details.cached_tokens} of ${next.usage.input_tokens} tokens`);
      assert.equal((await counter('flint_websocket_session_resumes_total', { result: 'resumed' })) - resumedBefore, 1);
    } finally {
      await second.close();
    }
  });

  test('a kept session expires after resumeGraceMs; ?session= names one too; a malformed name is refused', async () => {
    const expiredBefore = await counter('flint_websocket_session_resumes_total', { result: 'expired' });
    const first = await Socket.open({ query: '?session=short-lived' });
    const root = (await first.turn({ input: [user('Hello.')], max_output_tokens: 4 })).response!;
    await first.close();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    // This one and those the test above left have all expired.
    assert.ok((await counter('flint_websocket_session_resumes_total', { result: 'expired' })) - expiredBefore >= 1);
    assert.equal(await counter('flint_websocket_resumable_sessions'), 0);
    assert.equal(await counter('flint_websocket_resumable_bytes'), 0);
    const late = await Socket.open({ query: '?session=short-lived' });
    try {
      const refused = await late.turn({ previous_response_id: root.id, input: [user('Still there?')], max_output_tokens: 4 });
      assert.equal(refused.error!.code, 'previous_response_not_found');
    } finally {
      await late.close();
    }
    await assert.rejects(Socket.open({ headers: { 'x-flint-session': 'no spaces allowed' } }), /handshake answered 400/);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { assertWarmChain, responseOf, WsSession } from '../helpers/wsSession.js';
import { keyHash, rendezvousScore } from '../../src/utils/rendezvous.js';

/**
 * Flint as a front over remote members: a front without local workers (engine.workers: 0) serves
 * from other Flint nodes (real processes' workers, real llama.cpp), keeping sockets, sessions and
 * stored responses itself.
 */
let node: TestServer;
let front: TestServer;
const memberKey = 'member-key';

function frontYaml(upstreams: ReadonlyArray<{ name: string; url: string; slots?: number }>, probeIntervalMs = 200): string {
  const entries = upstreams.map((u) => `  - { name: ${u.name}, url: "${u.url}", kind: flint, key: ${memberKey}, slots: ${u.slots ?? 2} }`).join('\n');
  return `upstreams:\n${entries}\nupstream:\n  probeIntervalMs: ${probeIntervalMs}\n  retries: 2\n`;
}

before(async () => {
  node = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey });
  front = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml([{ name: 'node-a', url: node.url }]));
});
after(async () => {
  await front?.close();
  await node?.close();
});

const user = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
const metricsOf = async (server: TestServer) => (await fetch(`${server.url}/metrics`)).text();
const memberClient = () => new OpenAI({ baseURL: `${node.url}/v1`, apiKey: memberKey, maxRetries: 0 });

describe('front over remote members', () => {
  test('the front is ready once its member is, and serves the member model under its name', async () => {
    assert.equal((await fetch(`${front.url}/ready`)).status, 200);
    const models = await front.client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [node.app.scheduler.model!.id]);
    assert.match(await metricsOf(front), /^flint_upstream_up\{member="node-a",kind="flint"\} 1$/m);
  });

  test('a streamed chat through the front is the text the member gives directly (greedy), with its usage', async () => {
    const body = { model: node.app.scheduler.model!.id, messages: [{ role: 'user' as const, content: 'Write a function that adds two numbers.' }], max_tokens: 12, temperature: 0 };
    const direct = await memberClient().chat.completions.create(body);
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of await front.client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, direct.choices[0].message.content);
    assert.equal(usage?.prompt_tokens, direct.usage?.prompt_tokens);
    assert.equal(usage?.completion_tokens, direct.usage?.completion_tokens);
    const metrics = await metricsOf(front);
    assert.match(metrics, /^flint_upstream_requests_total\{member="node-a",outcome="ok"\} [1-9]/m);
    assert.match(metrics, /^flint_upstream_time_to_first_token_seconds_count\{member="node-a"\} [1-9]/m);
  });

  test("llama.cpp's /infill with extra chunks goes to the member's own /infill: the same completion and prompt as asked directly", async () => {
    const body = {
      input_prefix: 'export function clamp(value: number) {\n  return ',
      input_suffix: ';\n}\n',
      input_extra: [{ filename: 'src/limits.ts', text: 'export const limits = { low: 0, high: 100 };\n' }],
      prompt: 'Math.',
      n_predict: 6,
      temperature: 0,
    };
    const ask = async (url: string, key?: string) => {
      const res = await fetch(`${url}/infill`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body) });
      assert.equal(res.status, 200);
      return (await res.json()) as { content: string; tokens_evaluated: number; tokens_predicted: number; stop_type: string };
    };
    const direct = await ask(node.url, memberKey);
    const through = await ask(front.url);
    assert.equal(through.content, direct.content);
    assert.equal(through.tokens_evaluated, direct.tokens_evaluated, 'the member laid the prompt out (extra chunk, prefix, suffix, prompt) as it does for its own clients');
    assert.equal(through.tokens_predicted, direct.tokens_predicted);
    assert.equal(through.stop_type, direct.stop_type);
  });

  test('a forced tool call comes back through the front as a complete call', async () => {
    const completion = await front.client.chat.completions.create({
      model: node.app.scheduler.model!.id,
      messages: [{ role: 'user', content: 'Run the tests.' }],
      // A boolean argument: the random-weights model completes it within a few tokens.
      tools: [{ type: 'function', function: { name: 'run_tests', parameters: { type: 'object', properties: { watch: { type: 'boolean' } }, required: ['watch'], additionalProperties: false } } }],
      tool_choice: { type: 'function', function: { name: 'run_tests' } },
      max_tokens: 64,
      temperature: 0,
    });
    const calls = completion.choices[0].message.tool_calls ?? [];
    assert.equal(calls.length, 1, JSON.stringify(completion.choices[0]));
    const call = calls[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.function.name, 'run_tests');
    assert.equal(typeof JSON.parse(call.function.arguments).watch, 'boolean');
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  });

  test('WebSocket turns chained on the front continue from the member cache', async (t) => {
    const session = new WsSession(front.client);
    t.after(() => session.close());
    // The front sends the whole conversation; the member's slot still holds all but the new turn.
    await assertWarmChain(session, node.app.scheduler.model!.id, 3);
    // The member's cached tokens reach the front's own prompt-cache counts (known from its final usage).
    assert.match(await metricsOf(front), /^flint_prompt_cache_requests_total\{result="hit",reason="[a-z_]+"\} [1-9]/m);
  });

  test('HTTP requests naming their session in x-flint-session land on the member the session hashes to, turn after turn', async () => {
    const nodeB = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey });
    const pair = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml([{ name: 'node-a', url: node.url }, { name: 'node-b', url: nodeB.url }]));
    try {
      // The front scopes the key by tenant: anonymous here.
      const memberOf = (session: string) => {
        const hashed = keyHash(`t:anonymous:session:${session}`);
        return rendezvousScore(hashed, 'node-a', 2) > rendezvousScore(hashed, 'node-b', 2) ? 'node-a' : 'node-b';
      };
      const sessions = Array.from({ length: 6 }, (_, i) => `http-session-${i}`);
      const expected = { 'node-a': 0, 'node-b': 0 };
      for (const [i, session] of sessions.entries()) {
        const first = { role: 'user' as const, content: `Session ${i}: explain closure number ${i * 7}.` };
        const answer = await pair.client.chat.completions.create({ model: node.app.scheduler.model!.id, messages: [first], max_tokens: 3 }, { headers: { 'x-flint-session': session } });
        await pair.client.chat.completions.create(
          { model: node.app.scheduler.model!.id, messages: [first, { role: 'assistant', content: answer.choices[0].message.content ?? '' }, { role: 'user', content: 'And again.' }], max_tokens: 3 },
          { headers: { 'x-flint-session': session } },
        );
        expected[memberOf(session)] += 2;
      }
      assert.ok(expected['node-a'] > 0 && expected['node-b'] > 0, `the sessions spread over both members: ${JSON.stringify(expected)}`);
      const metrics = await metricsOf(pair);
      for (const [member, count] of Object.entries(expected)) assert.match(metrics, new RegExp(`^flint_upstream_requests_total\\{member="${member}",outcome="ok"\\} ${count}$`, 'm'), member);
    } finally {
      await pair.close();
      await nodeB.close();
    }
  });

  test('bounded spill (R = 1): a session waits for its own member while a request without a key takes an idle one ahead of it', async () => {
    // Three members by name at the front, one Flint node behind them all.
    const names = ['m1', 'm2', 'm3'];
    const spill = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `${frontYaml(names.map((name) => ({ name, url: node.url, slots: 1 })))}  candidates: 1\n`);
    const stop = new AbortController();
    try {
      const key = 'spill-session';
      const hashed = keyHash(`t:anonymous:${key}`);
      const own = [...names].sort((a, b) => rendezvousScore(hashed, b, 1) - rendezvousScore(hashed, a, 1))[0];
      const model = node.app.scheduler.model!.id;
      const long = await spill.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Write forever.' }], max_tokens: 1500, stream: true, prompt_cache_key: key }, { signal: stop.signal });
      const iterator = long[Symbol.asyncIterator]();
      await iterator.next(); // it runs on its member now
      let isSecondDone = false;
      const second = spill.client.chat.completions
        .create({ model, messages: [{ role: 'user', content: 'A second question of the session.' }], max_tokens: 2, prompt_cache_key: key })
        .then((r) => {
          isSecondDone = true;
          return r;
        });
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(spill.app.scheduler.status().queueDepth, 1, 'the session waits for its member');
      const keyless = await spill.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'No session here.' }], max_tokens: 2 });
      assert.ok(keyless.usage!.completion_tokens > 0);
      assert.equal(isSecondDone, false, 'the request without a key went ahead of the waiting one');
      stop.abort();
      await iterator.return?.();
      const answer = await second;
      assert.ok(answer.usage!.completion_tokens > 0);
      const metrics = await metricsOf(spill);
      // The session's two requests ran on its own member, the keyless one elsewhere.
      assert.match(metrics, new RegExp(`^flint_upstream_requests_total\\{member="${own}",outcome="ok"\\} 1$`, 'm'));
      assert.match(metrics, new RegExp(`^flint_upstream_requests_total\\{member="${own}",outcome="cancelled"\\} 1$`, 'm'));
      const others = names.filter((n) => n !== own).map((n) => Number(new RegExp(`^flint_upstream_requests_total\\{member="${n}",outcome="ok"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0));
      assert.equal(others.reduce((a, b) => a + b, 0), 1);
    } finally {
      stop.abort();
      await spill.close();
    }
  });

  test('a keyless previous_response_id chain keeps its first response as its session key (lineage), on the member that id ranks first', async () => {
    const names = ['m1', 'm2', 'm3'];
    const lineage = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `${frontYaml(names.map((name) => ({ name, url: node.url, slots: 1 })))}  candidates: 1\n`);
    try {
      const model = node.app.scheduler.model!.id;
      // No key at all: a stored first turn runs under its own response id, which the chain keeps.
      const first = await lineage.client.responses.create({ model, input: [user('Lineage: name a sorting algorithm.')] as never, max_output_tokens: 3 });
      const idHash = keyHash(`t:anonymous:${first.id}`);
      const own = [...names].sort((a, b) => rendezvousScore(idHash, b, 1) - rendezvousScore(idHash, a, 1))[0];
      let previous = first.id;
      let cached = 0;
      for (const text of ['And its cost?', 'And in place?']) {
        const next = await lineage.client.responses.create({ model, previous_response_id: previous, input: [user(text)] as never, max_output_tokens: 3 });
        cached = next.usage?.input_tokens_details?.cached_tokens ?? 0;
        previous = next.id;
      }
      assert.ok(cached > 0, 'the last turn found the chain in the cache');
      // Every turn pinned its slot under the chain's first response id, not the id it continued.
      const status = (await (await fetch(`${lineage.url}/v1/flint/status`)).json()) as { workers: Array<{ slots: Array<{ session?: string }> }> };
      const sessions = status.workers.flatMap((w) => w.slots.map((s) => s.session)).filter((s) => s !== undefined);
      assert.deepEqual(sessions, [first.id]);
      const metrics = await metricsOf(lineage);
      assert.match(metrics, new RegExp(`^flint_upstream_requests_total\\{member="${own}",outcome="ok"\\} 3$`, 'm'));
      // The key lives in the store with the response: a continuation after a restart of the
      // front would find it too (the row is read back, not the connection's memory).
      const stored = lineage.app.store.get(previous, 'anonymous');
      assert.equal(stored?.sessionKey, first.id);
    } finally {
      await lineage.close();
    }
  });

  test('requests without any key go to the least busy member, ties broken by their tenant (API key): in turn on one member, together on several', async () => {
    const names = ['m1', 'm2', 'm3'];
    const spread = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml(names.map((name) => ({ name, url: node.url, slots: 2 }))));
    try {
      const model = node.app.scheduler.model!.id;
      const ranked = [...names].sort((a, b) => rendezvousScore(keyHash('t:anonymous'), b, 2) - rendezvousScore(keyHash('t:anonymous'), a, 2));
      for (let i = 0; i < 3; i++) await spread.client.chat.completions.create({ model, messages: [{ role: 'user', content: `One-off question ${i}.` }], max_tokens: 2 });
      let metrics = await metricsOf(spread);
      assert.match(metrics, new RegExp(`^flint_upstream_requests_total\\{member="${ranked[0]}",outcome="ok"\\} 3$`, 'm'), 'one after another: all on the first in rank');
      assert.match(metrics, /^flint_slot_routes_total\{route="tenant"\} 3$/m);
      // Three at once: each member has one busy slot of two, so they spread one to each.
      await Promise.all([0, 1, 2].map((i) => spread.client.chat.completions.create({ model, messages: [{ role: 'user', content: `Together ${i}.` }], max_tokens: 40 })));
      metrics = await metricsOf(spread);
      for (const name of ranked.slice(1)) assert.match(metrics, new RegExp(`^flint_upstream_requests_total\\{member="${name}",outcome="ok"\\} 1$`, 'm'), name);
    } finally {
      await spread.close();
    }
  });

  test("a vLLM-kind member's load is read from its /metrics (a Flint node exporting vLLM's names)", async () => {
    const vllmLike = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey }, 'metrics:\n  vllmAliases: true\n');
    const viaVllm = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `upstreams:\n  - { name: v, url: "${vllmLike.url}", kind: vllm, key: ${memberKey}, slots: 3 }\nupstream:\n  probeIntervalMs: 200\n`);
    try {
      const metrics = await metricsOf(viaVllm);
      assert.match(metrics, /^flint_upstream_up\{member="v",kind="vllm"\} 1$/m);
      assert.match(metrics, /^flint_upstream_load\{member="v",figure="busy_slots"\} 0$/m);
      assert.match(metrics, /^flint_upstream_load\{member="v",figure="total_slots"\} 3$/m);
      assert.match(metrics, /^flint_upstream_load\{member="v",figure="kv_usage"\} 0$/m);
      const chat = await viaVllm.client.chat.completions.create({ model: node.app.scheduler.model!.id, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
      assert.ok((chat.usage?.completion_tokens ?? 0) > 0);
    } finally {
      await viaVllm.close();
      await vllmLike.close();
    }
  });

  test('a member that went away after its last probe: its request is retried on the other and nothing fails', async () => {
    const doomed = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey, FLINT_SLOTS: '1' });
    // Probes far apart: the front learns of the loss only from a request.
    const two = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml([{ name: 'node-a', url: node.url, slots: 1 }, { name: 'doomed', url: doomed.url, slots: 1 }], 600_000));
    try {
      assert.match(await metricsOf(two), /^flint_upstream_up\{member="doomed",kind="flint"\} 1$/m);
      await doomed.close();
      // Two at once over one slot each: one of them is leased on the member that is gone.
      const answers = await Promise.all(
        [1, 2].map((i) => two.client.chat.completions.create({ model: node.app.scheduler.model!.id, messages: [{ role: 'user', content: `Question ${i}` }], max_tokens: 4, temperature: 0 })),
      );
      for (const answer of answers) assert.ok(answer.choices[0].finish_reason, JSON.stringify(answer));
      const metrics = await metricsOf(two);
      assert.match(metrics, /^flint_upstream_retries_total [1-9]/m);
      assert.match(metrics, /^flint_upstream_up\{member="doomed",kind="flint"\} 0$/m);
      assert.match(metrics, /^flint_upstream_down_total\{member="doomed"\} 1$/m);
      assert.match(metrics, /^flint_upstream_requests_total\{member="doomed",outcome="unavailable"\} [1-9]/m);
    } finally {
      await two.close();
      await doomed.close();
    }
  });

  test('a member whose engine dies mid-stream, with migration off: the stream through the front ends with an error, not a hang', async () => {
    const fragile = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey, FLINT_SLOTS: '1' });
    const via = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `${frontYaml([{ name: 'fragile', url: fragile.url, slots: 1 }])}  migrate: false\n`);
    try {
      const stream = await via.client.chat.completions.create({ model: fragile.app.scheduler.model!.id, messages: [{ role: 'user', content: 'Write a long story.' }], max_tokens: 1500, stream: true });
      const startedAt = Date.now();
      let chunks = 0;
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) {
            if ((chunk.choices[0]?.delta.content ?? '') !== '' && chunks++ === 0) process.kill(fragile.app.pool.liveWorkers[0].pid!, 'SIGKILL');
          }
        })(),
        /failed|unavailable|stopped/i,
      );
      assert.ok(chunks >= 1);
      assert.ok(Date.now() - startedAt < 15_000, 'the error came within seconds');
    } finally {
      await via.close();
      await fragile.close();
    }
  });

  test('a member whose engine dies mid-answer: the turn migrates to another member, which continues the answer; the client sees one whole stream', async () => {
    const fragile = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey, FLINT_SLOTS: '1' });
    const via = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml([{ name: 'fragile', url: fragile.url, slots: 1 }, { name: 'node-a', url: node.url }]));
    try {
      const model = fragile.app.scheduler.model!.id;
      // A session key that ranks the fragile member first.
      const key = Array.from({ length: 64 }, (_, i) => `migrate-${i}`).find((k) => {
        const hashed = keyHash(`t:anonymous:${k}`);
        return rendezvousScore(hashed, 'fragile', 1) > rendezvousScore(hashed, 'node-a', 2);
      })!;
      const stream = await via.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Write a long story.' }], max_tokens: 120, temperature: 0, stream: true, stream_options: { include_usage: true }, prompt_cache_key: key });
      let text = '';
      let before = '';
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta.content ?? '';
        if (piece !== '' && text === '') {
          before = piece;
          process.kill(fragile.app.pool.liveWorkers[0].pid!, 'SIGKILL');
        }
        text += piece;
        finish = chunk.choices[0]?.finish_reason ?? finish;
        usage = chunk.usage ?? usage;
      }
      assert.ok(text.length > before.length, 'the answer went on after the member died');
      assert.equal(finish, 'length');
      // Every token counted once: the part before (from the member's running usage) and the rest, within the cap.
      assert.ok((usage?.completion_tokens ?? 0) <= 120 && (usage?.completion_tokens ?? 0) >= 110, JSON.stringify(usage));
      const metrics = await metricsOf(via);
      assert.match(metrics, /^flint_upstream_migrations_total\{outcome="ok"\} 1$/m);
      // The rest of the answer came from the other member.
      assert.match(metrics, /^flint_upstream_requests_total\{member="node-a",outcome="ok"\} 1$/m);
      assert.doesNotMatch(metrics, /^flint_upstream_requests_total\{member="fragile",outcome="ok"\} [1-9]/m);
    } finally {
      await via.close();
      await fragile.close();
    }
  });

  test('continue_final_message (vLLM\'s): the final assistant message is the start of the answer, and the output goes on from it', async () => {
    const model = node.app.scheduler.model!.id;
    const messages = [{ role: 'user' as const, content: 'Write a function that adds two numbers.' }];
    const whole = await memberClient().chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
    const full = whole.choices[0].message.content ?? '';
    const head = full.slice(0, Math.floor(full.length / 2));
    const rest = await memberClient().chat.completions.create({ model, messages: [...messages, { role: 'assistant', content: head }], max_tokens: 16, temperature: 0, continue_final_message: true, add_generation_prompt: false } as never);
    assert.ok((rest.choices[0].message.content ?? '').length > 0);
    assert.ok(!(rest.choices[0].message.content ?? '').startsWith(head) || head === '', 'the given start is not repeated');
    const refused = await fetch(`${node.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${memberKey}` },
      body: JSON.stringify({ model, messages, continue_final_message: true }),
    });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /last message to be an assistant message/);
    // A start of the answer longer than the context is the context error before anything is tokenized.
    const huge = await fetch(`${node.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${memberKey}` },
      body: JSON.stringify({ model, messages: [...messages, { role: 'assistant', content: 'x'.repeat(2_000_000) }], continue_final_message: true, add_generation_prompt: false }),
    });
    assert.equal(huge.status, 400);
    const error = ((await huge.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'context_length_exceeded');
    // Counted from its characters by the gateway ("at least"), not tokenized by a worker.
    assert.match(error.message, /at least \d+/);
  });

  test('render: front over a vLLM-kind member (a Flint node speaking its API): the front renders each turn and sends token ids; the answer is the member\'s own, warm turns hit its cache', async (t) => {
    const vllm = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `upstreams:\n  - { name: v, url: "${node.url}", kind: vllm, key: ${memberKey}, slots: 2, render: front }\nupstream:\n  probeIntervalMs: 200\n`);
    t.after(() => vllm.close());
    assert.equal((await fetch(`${vllm.url}/ready`)).status, 200);
    const model = node.app.scheduler.model!.id;
    const body = { model, messages: [{ role: 'user' as const, content: 'Write a function that adds two numbers.' }], max_tokens: 12, temperature: 0 };
    const direct = await memberClient().chat.completions.create(body);
    const through = await vllm.client.chat.completions.create({ ...body, model: vllm.app.scheduler.model!.id });
    // The same template and tokenizer on both sides: the same prompt tokens, the same greedy answer.
    assert.equal(through.choices[0].message.content, direct.choices[0].message.content);
    assert.equal(through.usage?.prompt_tokens, direct.usage?.prompt_tokens);
    const session = new WsSession(vllm.client);
    t.after(() => session.close());
    await assertWarmChain(session, vllm.app.scheduler.model!.id, 3);
    assert.match(await metricsOf(vllm), /^flint_prompt_renders_total\{kind="incremental"[^}]*\} [1-9]/m);
  });

  test('render: front over an Ollama-kind member (a Flint node speaking its API): the front sends the rendered text raw and parses the answer itself', async (t) => {
    const ollama = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `upstreams:\n  - { name: o, url: "${node.url}", kind: ollama, key: ${memberKey}, slots: 2, render: front }\nupstream:\n  probeIntervalMs: 200\n`);
    t.after(() => ollama.close());
    assert.equal((await fetch(`${ollama.url}/ready`)).status, 200);
    const model = ollama.app.scheduler.model!.id;
    const body = { model, messages: [{ role: 'user' as const, content: 'Write a function that adds two numbers.' }], max_tokens: 12, temperature: 0 };
    const direct = await memberClient().chat.completions.create({ ...body, model: node.app.scheduler.model!.id });
    const through = await ollama.client.chat.completions.create(body);
    // Ollama's raw prompt is the rendered text, which the member tokenizes with its special tokens: the same answer.
    assert.equal(through.choices[0].message.content, direct.choices[0].message.content);
    assert.equal(through.usage?.completion_tokens, direct.usage?.completion_tokens);
    // Tool calls are the front's to parse: a forced one comes back whole.
    const tools = [{ type: 'function' as const, function: { name: 'run_tests', parameters: { type: 'object', properties: { watch: { type: 'boolean' } }, required: ['watch'] } } }];
    const called = await ollama.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'run them' }], tools, tool_choice: 'required', max_tokens: 64 });
    // Ollama takes no GBNF: the arguments are constrained by their JSON schema (its `format`).
    assert.equal(called.choices[0].finish_reason, 'tool_calls');
    const call = called.choices[0].message.tool_calls![0] as { function: { name: string; arguments: string } };
    assert.equal(call.function.name, 'run_tests');
    assert.equal(typeof JSON.parse(call.function.arguments).watch, 'boolean');
  });

  test('two fronts over the same members send each new session to the same member (rendezvous hashing on its key)', async () => {
    const other = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey });
    const members = [{ name: 'node-a', url: node.url }, { name: 'node-c', url: other.url }];
    const fronts = [await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml(members)), await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml(members))];
    const served = async (front: TestServer) => {
      const text = await metricsOf(front);
      return members.map((m) => Number(new RegExp(`^flint_upstream_requests_total\\{member="${m.name}",outcome="ok"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0));
    };
    try {
      // The second front sees the sessions in the opposite order: what it chooses cannot follow from its own history.
      const order = [[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0]];
      const chosen: Array<Map<number, string>> = [new Map(), new Map()];
      for (const [i, front] of fronts.entries()) {
        for (const session of order[i]) {
          const before = await served(front);
          await front.client.chat.completions.create({ model: node.app.scheduler.model!.id, messages: [{ role: 'user', content: `Session ${session}: hello.` }], max_tokens: 2, prompt_cache_key: `session-${session}` });
          const after = await served(front);
          chosen[i].set(session, members[after.findIndex((n, m) => n > before[m])].name);
        }
      }
      const [first, second] = chosen.map((c) => order[0].map((session) => c.get(session)));
      assert.deepEqual(second, first, 'both fronts chose alike');
      assert.equal(new Set(first).size, 2, `sessions spread over both members: ${first.join(' ')}`);
      assert.match(await metricsOf(fronts[0]), /^flint_slot_routes_total\{route="hash"\} 8$/m);
    } finally {
      for (const front of fronts) await front.close();
      await other.close();
    }
  });

  test('a Flint member that its other clients keep full: new sessions go to another member', async () => {
    const busy = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey, FLINT_SLOTS: '1' });
    const spare = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: memberKey });
    const members = [{ name: 'node-busy', url: busy.url, slots: 1 }, { name: 'node-spare', url: spare.url, slots: 1 }];
    const loadFront = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, frontYaml(members, 100));
    const direct = new AbortController();
    try {
      // A session the front would send to node-busy (its cache key as the front scopes it).
      const ranksBusyFirst = (key: string) => {
        const hashed = keyHash(`t:anonymous:${key}`);
        return rendezvousScore(hashed, 'node-busy', 1) > rendezvousScore(hashed, 'node-spare', 1);
      };
      const key = Array.from({ length: 50 }, (_, i) => `load-session-${i}`).find(ranksBusyFirst)!;
      // node-busy's own clients: one long generation on its only slot, one more waiting.
      const long = () =>
        fetch(`${busy.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${memberKey}` },
          body: JSON.stringify({ model: busy.app.scheduler.model!.id, messages: [{ role: 'user', content: 'Write forever.' }], max_tokens: 1800 }),
          signal: direct.signal,
        }).catch(() => undefined);
      const running = [long(), long()];
      const waitingOf = async () => Number(/^flint_upstream_load\{member="node-busy",figure="waiting"\} (\d+)/m.exec(await metricsOf(loadFront))?.[1] ?? 0);
      for (let i = 0; i < 100 && (await waitingOf()) < 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok((await waitingOf()) >= 1, 'the front read node-busy as full');
      await loadFront.client.chat.completions.create({ model: busy.app.scheduler.model!.id, messages: [{ role: 'user', content: 'hello' }], max_tokens: 2, prompt_cache_key: key });
      const metrics = await metricsOf(loadFront);
      assert.match(metrics, /^flint_upstream_requests_total\{member="node-spare",outcome="ok"\} 1$/m);
      assert.doesNotMatch(metrics, /^flint_upstream_requests_total\{member="node-busy"/m);
      direct.abort();
      await Promise.all(running);
    } finally {
      direct.abort();
      await loadFront.close();
      await busy.close();
      await spare.close();
    }
  });

  test("tenants behind a front stay apart on a member that lists the front's key in frontKeys", async () => {
    const secret = 'System: the launch code is 7731-alpha-zulu. Never reveal it. '.repeat(6);
    const [k1, k2] = ['tenant-one-key', 'tenant-two-key'];
    const ask = async (target: TestServer, key: string) => {
      const res = await fetch(`${target.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: member.app.scheduler.model!.id, messages: [{ role: 'system', content: secret }, { role: 'user', content: 'hi' }], max_tokens: 1 }),
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } }).usage;
    };
    const frontKey = 'front-of-tenants';
    // One slot on the member: the second tenant's request lands where the first tenant's prompt is held.
    const member = await startServer({ FLINT_CONTEXT_SIZE: '2048', FLINT_SLOTS: '1', FLINT_FRONT_KEYS: frontKey });
    const tenantsFront = await startServer(
      { FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048', FLINT_API_KEYS: `${k1},${k2}` },
      `upstreams:\n  - { name: m, url: "${member.url}", kind: flint, key: ${frontKey}, slots: 1 }\n`,
    );
    try {
      const first = await ask(tenantsFront, k1);
      assert.ok((await ask(tenantsFront, k1)).prompt_tokens_details.cached_tokens >= first.prompt_tokens - 1, 'the same tenant hits its cache on the member');
      assert.equal((await ask(tenantsFront, k2)).prompt_tokens_details.cached_tokens, 0, 'another tenant of the same front does not');
      // The front's key alone, without naming a tenant, is yet another tenant; nobody else may name one.
      assert.equal((await ask(member, frontKey)).prompt_tokens_details.cached_tokens, 0);
    } finally {
      await tenantsFront.close();
      await member.close();
    }
  });

  test('with no member up the front is not ready and refuses with 503 at once', async () => {
    const closed = await startServer({ FLINT_CONTEXT_SIZE: '512' });
    const url = closed.url;
    await closed.close();
    const lonely = await startServer({ FLINT_WORKERS: '0' }, frontYaml([{ name: 'gone', url }]));
    try {
      assert.equal((await fetch(`${lonely.url}/ready`)).status, 503);
      const res = await fetch(`${lonely.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'any', messages: [{ role: 'user', content: 'hi' }] }) });
      assert.equal(res.status, 503);
      const body = (await res.json()) as { error: { type: string } };
      assert.equal(body.error.type, 'service_unavailable_error');
    } finally {
      await lonely.close();
    }
  });
});

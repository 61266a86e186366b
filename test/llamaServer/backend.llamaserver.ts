import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { repoRoot, tinyModelPath } from '../helpers/testModel.js';
import { assertWarmChain, responseOf, WsSession } from '../helpers/wsSession.js';

/**
 * `engine.backend: llama-server`: Flint starts llama.cpp's own server as its worker (the real
 * binary, built by `npm run build:llama-server` from the source node-llama-cpp ships) and serves
 * every protocol from it; and a front whose member is a llama-server it did not start.
 */
const binary = process.env.FLINT_LLAMA_SERVER || path.join(repoRoot, '.cache', 'llama-server', 'bin', 'llama-server');
let flint: TestServer;
const user = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
const metricsOf = async (server: TestServer) => (await fetch(`${server.url}/metrics`)).text();
const modelOf = () => flint.app.scheduler.model!.id;
const pidOf = (server: TestServer) => server.app.llamaServers!.pids[0];

before(async () => {
  assert.ok(existsSync(binary), `no llama-server at ${binary}: run 'npm run build:llama-server' (or set FLINT_LLAMA_SERVER)`);
  flint = await startServer({ FLINT_BACKEND: 'llama-server', FLINT_LLAMA_SERVER: binary, FLINT_CONTEXT_SIZE: '2048' });
});
after(async () => {
  await flint?.close();
});

/** Resolves once the scheduler holds no busy slot (every lease released), or fails after 10 s. */
async function slotsIdle(server: TestServer): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (server.app.scheduler.status().slots.some((s) => s.isBusy)) {
    assert.ok(Date.now() < deadline, `slots still busy: ${JSON.stringify(server.app.scheduler.status().slots)}`);
    await delay(20);
  }
}

describe('engine.backend: llama-server', () => {
  test('ready with both slots of its llama-server, whose own process runs the model', async () => {
    assert.equal((await fetch(`${flint.url}/ready`)).status, 200);
    const state = flint.app.scheduler.status();
    assert.equal(state.slots.length, 2);
    assert.equal(flint.app.pool.liveWorkers.length, 0, 'no node-llama-cpp worker');
    assert.equal(typeof pidOf(flint), 'number');
    assert.equal(flint.app.scheduler.model?.contextSize, 2048);
    assert.match(await metricsOf(flint), /^flint_workers_up 1$/m);
  });

  test('a greedy chat streams the same text it answers whole, with usage', async () => {
    const body = { model: modelOf(), messages: [{ role: 'user' as const, content: 'Write a function that adds two numbers.' }], max_tokens: 12, temperature: 0 };
    const whole = await flint.client.chat.completions.create(body);
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of await flint.client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.ok(text.length > 0);
    assert.equal(text, whole.choices[0].message.content);
    assert.ok((whole.usage?.prompt_tokens ?? 0) > 5, JSON.stringify(whole.usage));
    assert.equal(usage?.prompt_tokens, whole.usage?.prompt_tokens);
    // The repeat found its prompt in the slot Flint pinned it to.
    assert.ok((usage?.prompt_tokens_details?.cached_tokens ?? 0) >= (usage?.prompt_tokens ?? 0) - 1, JSON.stringify(usage));
  });

  test('WebSocket turns chained by previous_response_id continue from the slot: turn N evaluates only what is new', async (t) => {
    const session = new WsSession(flint.client);
    t.after(() => session.close());
    await assertWarmChain(session, modelOf(), 4);
  });

  test('the worker renders each warm turn from its new messages only and sends token ids; the server evaluates only them', async (t) => {
    const before = await metricsOf(flint);
    const count = (metrics: string, kind: string) => Number(new RegExp(`^flint_prompt_renders_total\\{kind="${kind}"[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
    const session = new WsSession(flint.client);
    t.after(() => session.close());
    await assertWarmChain(session, modelOf(), 3);
    const after = await metricsOf(flint);
    assert.ok(count(after, 'incremental') - count(before, 'incremental') >= 2, `incremental renders: ${count(before, 'incremental')} -> ${count(after, 'incremental')}`);
    // The IPC message of a warm turn carried its new messages only.
    assert.match(after, /^flint_ipc_chat_messages_total\{kind="kept"\} [1-9]/m);
  });

  test('tool_choice required is one complete call under its grammar; json_schema output follows the schema', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'run_tests', description: 'Run the test suite.', parameters: { type: 'object', properties: { watch: { type: 'boolean' } }, required: ['watch'], additionalProperties: false } } }];
    const res = await flint.client.chat.completions.create({ model: modelOf(), messages: [{ role: 'user', content: 'run them' }], tools, tool_choice: 'required', max_tokens: 64 });
    assert.equal(res.choices[0].finish_reason, 'tool_calls');
    const call = res.choices[0].message.tool_calls![0] as { function: { name: string; arguments: string } };
    assert.equal(call.function.name, 'run_tests');
    assert.equal(typeof JSON.parse(call.function.arguments).watch, 'boolean');
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, count: { type: 'integer' } }, required: ['name', 'count'], additionalProperties: false };
    const json = await flint.client.chat.completions.create({ model: modelOf(), messages: [{ role: 'user', content: 'Describe a package.' }], response_format: { type: 'json_schema', json_schema: { name: 'pkg', schema } }, max_tokens: 120, temperature: 0 });
    const parsed = JSON.parse(json.choices[0].message.content ?? '');
    assert.deepEqual(Object.keys(parsed).sort(), ['count', 'name']);
    assert.ok(Number.isInteger(parsed.count));
  });

  test('generate:false evaluates the prompt into the slot without output; the next turn finds it cached', async (t) => {
    const session = new WsSession(flint.client);
    t.after(() => session.close());
    const warm = await session.turn({ model: modelOf(), store: false, generate: false, input: [{ type: 'message', role: 'developer', content: 'Repository context: '.repeat(50) }] });
    assert.equal(warm.at(-1)!.type, 'response.completed');
    const warmed = responseOf(warm);
    assert.deepEqual(warmed.output, []);
    assert.equal(warmed.usage.output_tokens, 0);
    const real = await session.turn({ model: modelOf(), store: false, previous_response_id: warmed.id, input: [user('Go.')], max_output_tokens: 4 });
    const usage = responseOf(real).usage;
    assert.ok(usage.input_tokens_details.cached_tokens >= warmed.usage.input_tokens * 0.95, `cached ${usage.input_tokens_details.cached_tokens} of ${warmed.usage.input_tokens}`);
  });

  test("fill-in-the-middle goes to llama-server's /infill, from Completions and from llama.cpp's /infill route", async () => {
    const completion = await flint.client.completions.create({ model: modelOf(), prompt: 'def add(a, b):\n    ', suffix: '\n    return c\n', max_tokens: 8, temperature: 0 });
    assert.ok(completion.choices[0].text.length > 0);
    assert.ok((completion.usage?.prompt_tokens ?? 0) > 5);
    const res = await fetch(`${flint.url}/infill`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_prefix: 'def add(a, b):\n    ', input_suffix: '\n    return c\n', input_extra: [{ filename: 'util.py', text: 'def sub(a, b):\n    return a - b\n' }], n_predict: 8, temperature: 0 }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { content: string; tokens_evaluated: number };
    assert.equal(typeof body.content, 'string');
    assert.ok(body.tokens_evaluated > 10, JSON.stringify(body));
  });

  test('a prompt longer than a slot is the context error, and the slot is free again', async () => {
    const err = await flint.client.chat.completions
      .create({ model: modelOf(), messages: [{ role: 'user', content: 'word '.repeat(4000) }], max_tokens: 4 })
      .then(() => undefined, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    assert.ok(err instanceof OpenAI.APIError, 'refused');
    assert.equal(err.status, 400);
    assert.equal(err.code, 'context_length_exceeded');
    await slotsIdle(flint);
  });

  test('a client that goes away mid-stream frees its slot; the next request is served', async () => {
    const controller = new AbortController();
    const stream = await flint.client.chat.completions.create({ model: modelOf(), messages: [{ role: 'user', content: 'Count to one thousand.' }], max_tokens: 400, stream: true }, { signal: controller.signal });
    let chunks = 0;
    // The client library ends its iteration quietly on its own abort.
    for await (const chunk of stream) if ((chunk.choices[0]?.delta.content ?? '') !== '' && ++chunks === 1) controller.abort();
    assert.equal(chunks, 1);
    await slotsIdle(flint);
    const next = await flint.client.chat.completions.create({ model: modelOf(), messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
    assert.ok(next.choices[0].message.content !== undefined);
  });

  test('kill -9 of the llama-server mid-stream: that stream ends with an error, the worker restarts, the gateway serves on', async () => {
    const pid = pidOf(flint);
    const stream = await flint.client.chat.completions.create({ model: modelOf(), messages: [{ role: 'user', content: 'Count to one thousand.' }], max_tokens: 400, stream: true });
    let chunks = 0;
    const ended = await (async () => {
      try {
        for await (const chunk of stream) if ((chunk.choices[0]?.delta.content ?? '') !== '' && ++chunks === 2) process.kill(pid, 'SIGKILL');
        return 'finished';
      } catch (err) {
        return `error: ${(err as Error).message}`;
      }
    })();
    assert.match(ended, /^error: /, 'the cut stream ended with an error, not as a finished answer');
    await slotsIdle(flint);
    const deadline = Date.now() + 60_000;
    while (flint.app.scheduler.status().slots.length === 0 || pidOf(flint) === pid || pidOf(flint) === undefined) {
      assert.ok(Date.now() < deadline, 'llama-server restarted within 60 s');
      await delay(100);
    }
    const next = await flint.client.chat.completions.create({ model: modelOf(), messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
    assert.ok(next.usage!.completion_tokens > 0);
    assert.match(await metricsOf(flint), /^flint_worker_restarts_total [1-9]/m);
  });

  test('kill -9 of the worker process that drives the server: its server goes with it, both restart, the gateway serves on', async () => {
    const serverPid = pidOf(flint);
    const workerPid = flint.app.llamaServers!.liveWorkers[0].pid!;
    process.kill(workerPid, 'SIGKILL');
    const deadline = Date.now() + 60_000;
    while (flint.app.llamaServers!.liveWorkers.length === 0 || flint.app.llamaServers!.liveWorkers[0].pid === workerPid || flint.app.scheduler.status().slots.length === 0) {
      assert.ok(Date.now() < deadline, 'the pair restarted within 60 s');
      await delay(100);
    }
    assert.notEqual(pidOf(flint), serverPid, 'a new llama-server');
    assert.throws(() => process.kill(serverPid, 0), 'the old llama-server is gone');
    const next = await flint.client.chat.completions.create({ model: modelOf(), messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
    assert.ok(next.usage!.completion_tokens > 0);
  });
});

describe('a front over a llama-server it did not start (upstream kind llama-server)', () => {
  let server: ChildProcess | undefined;
  let front: TestServer | undefined;
  const port = 18_000 + Math.floor(Math.random() * 2_000);
  const key = 'llama-key';

  before(async () => {
    const model = await tinyModelPath();
    server = spawn(binary, ['--model', model, '--host', '127.0.0.1', '--port', String(port), '--ctx-size', '4096', '--parallel', '2', '--threads', '1', '--threads-batch', '1', '--jinja', '--no-webui', '--metrics'], {
      stdio: 'ignore',
      env: { ...process.env, LLAMA_API_KEY: key },
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.ok(Date.now() < deadline, 'llama-server up within 60 s');
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      await delay(100);
    }
    front = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `upstreams:\n  - { name: llama, url: "http://127.0.0.1:${port}", kind: llama-server, key: ${key}, slots: 2 }\nupstream:\n  probeIntervalMs: 200\n`);
  });
  after(async () => {
    await front?.close();
    if (server?.pid !== undefined && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      process.kill(server.pid, 'SIGTERM');
      await exited;
    }
  });

  test('chat and WebSocket turns go through the front; warm turns report the cached prompt', async (t) => {
    const before = await metricsOf(front!);
    assert.match(before, /^flint_upstream_up\{member="llama",kind="llama-server"\} 1$/m);
    // Its load, read from its own /slots and /metrics.
    assert.match(before, /^flint_upstream_load\{member="llama",figure="total_slots"\} 2$/m);
    assert.match(before, /^flint_upstream_load\{member="llama",figure="waiting"\} 0$/m);
    const models = await front!.client.models.list();
    const model = models.data[0].id;
    const chat = await front!.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Say hi.' }], max_tokens: 6, temperature: 0 });
    assert.ok((chat.usage?.completion_tokens ?? 0) > 0);
    const session = new WsSession(front!.client);
    t.after(() => session.close());
    await assertWarmChain(session, model, 3);
  });

  test('render: front: the front renders and tokenizes each turn itself and sends token ids; warm turns evaluate only what is new; its worker restarts', async (t) => {
    const rendering = await startServer(
      { FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' },
      `upstreams:\n  - { name: llama, url: "http://127.0.0.1:${port}", kind: llama-server, key: ${key}, slots: 2, render: front }\nupstream:\n  probeIntervalMs: 200\n`,
    );
    t.after(() => rendering.close());
    assert.equal((await fetch(`${rendering.url}/ready`)).status, 200);
    const first = await metricsOf(rendering);
    assert.match(first, /^flint_upstream_up\{member="llama",kind="llama-server"\} 1$/m);
    // Its own load, read from its /slots at each probe.
    assert.match(first, /^flint_upstream_load\{member="llama",figure="total_slots"\} 2$/m);
    // The model's facts are those of the GGUF this front rendered with, not guessed.
    assert.equal(rendering.app.scheduler.model?.architecture, flint.app.scheduler.model?.architecture);
    const model = rendering.app.scheduler.model!.id;
    const session = new WsSession(rendering.client);
    t.after(() => session.close());
    await assertWarmChain(session, model, 3);
    assert.match(await metricsOf(rendering), /^flint_prompt_renders_total\{kind="incremental"[^}]*\} [1-9]/m);
    // Tool calls are parsed by the front: a forced call is complete and valid.
    const tools = [{ type: 'function' as const, function: { name: 'run_tests', parameters: { type: 'object', properties: { watch: { type: 'boolean' } }, required: ['watch'], additionalProperties: false } } }];
    const forced = await rendering.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'run them' }], tools, tool_choice: 'required', max_tokens: 64 });
    assert.equal(forced.choices[0].finish_reason, 'tool_calls');
    assert.equal(typeof JSON.parse((forced.choices[0].message.tool_calls![0] as { function: { arguments: string } }).function.arguments).watch, 'boolean');
    // Its worker process dies: the member leaves the pool and is back with a new worker within a few probes.
    const attached = rendering.app.renderedMembers[0];
    const workerPid = attached.worker!.pid!;
    process.kill(workerPid, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    while (!attached.isUp || attached.worker?.pid === workerPid) {
      assert.ok(Date.now() < deadline, 'a new worker within 30 s');
      await delay(50);
    }
    const again = await rendering.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Say hi.' }], max_tokens: 4 });
    assert.ok((again.usage?.completion_tokens ?? 0) > 0);
  });

  test('a wrong key marks the member down with the reason, not the client', async () => {
    const wrong = await startServer({ FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, `upstreams:\n  - { name: llama, url: "http://127.0.0.1:${port}", kind: llama-server, key: not-the-key, slots: 2 }\nupstream:\n  probeIntervalMs: 200\n`);
    try {
      assert.match(await metricsOf(wrong), /^flint_upstream_up\{member="llama",kind="llama-server"\} 0$/m);
      assert.equal((await fetch(`${wrong.url}/ready`)).status, 503);
    } finally {
      await wrong.close();
    }
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { APIError } from 'openai';
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { tinyModelPath } from '../helpers/testModel.js';

let server: TestServer;
let llama: Llama;
let model: LlamaModel;

before(async () => {
  server = await startServer();
  llama = await getLlama({ gpu: false, build: 'never' });
  model = await llama.loadModel({ modelPath: await tinyModelPath() });
});
after(async () => {
  await server?.close();
  await model?.dispose();
  await llama?.dispose();
});

/** Counts tokens the way an independent reader of the ChatML template would. */
function chatmlTokens(messages: Array<{ role: string; content: string }>): number {
  const text = messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';
  return model.tokenize(text, true).length;
}

describe('chat completions over HTTP', () => {
  test('non-streaming returns a chat.completion with consistent usage', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are a coding assistant.' },
      { role: 'user' as const, content: 'function add(a: number, b: number) {' },
    ];
    const res = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages, max_tokens: 8, temperature: 0 });
    assert.equal(res.object, 'chat.completion');
    assert.match(res.id, /^chatcmpl-[0-9A-Za-z]{24}$/);
    assert.equal(res.model, server.app.scheduler.model!.id);
    assert.equal(res.choices.length, 1);
    assert.equal(res.choices[0].message.role, 'assistant');
    assert.equal(typeof res.choices[0].message.content, 'string');
    assert.ok(['stop', 'length'].includes(res.choices[0].finish_reason));
    const usage = res.usage!;
    assert.equal(usage.prompt_tokens, chatmlTokens(messages));
    assert.ok(usage.completion_tokens >= 1 && usage.completion_tokens <= 8);
    if (res.choices[0].finish_reason === 'length') assert.equal(usage.completion_tokens, 8);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    assert.equal(typeof usage.prompt_tokens_details?.cached_tokens, 'number');
  });

  test('streaming sends role, content chunks, a finish chunk, usage and [DONE]', async () => {
    const messages = [{ role: 'user' as const, content: 'Write a Python function that reverses a list.' }];
    const stream = await server.client.chat.completions.create({
      messages,
      model: server.app.scheduler.model!.id,
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length >= 3);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1, 'every chunk carries the same id');
    assert.equal(new Set(chunks.map((c) => c.created)).size, 1);
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    const usageChunk = chunks.at(-1)!;
    assert.deepEqual(usageChunk.choices, []);
    const finishChunk = chunks.at(-2)!;
    assert.ok(['stop', 'length'].includes(finishChunk.choices[0].finish_reason!));
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
    const usage = usageChunk.usage!;
    assert.equal(usage.prompt_tokens, chatmlTokens(messages));
    const streamed = chunks.slice(1, -2).map((c) => c.choices[0].delta.content ?? '').join('');
    if (usage.completion_tokens > 0) assert.ok(streamed.length > 0);
    if (finishChunk.choices[0].finish_reason === 'length') assert.equal(usage.completion_tokens, 12);
    // Streaming changes only the framing: at temperature 0 the text equals the non-streaming answer.
    const whole = await server.client.chat.completions.create({ messages, model: server.app.scheduler.model!.id, max_tokens: 12, temperature: 0 });
    assert.equal(streamed, whole.choices[0].message.content);
  });

  test('temperature 0 is deterministic, and so is a fixed seed', async () => {
    const body = { model: server.app.scheduler.model!.id, messages: [{ role: 'user' as const, content: 'const x = [1, 2, 3].map(' }], max_tokens: 16 };
    const a = await server.client.chat.completions.create({ ...body, temperature: 0 });
    const b = await server.client.chat.completions.create({ ...body, temperature: 0 });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    const c = await server.client.chat.completions.create({ ...body, temperature: 0.9, seed: 1234 });
    const d = await server.client.chat.completions.create({ ...body, temperature: 0.9, seed: 1234 });
    assert.equal(c.choices[0].message.content, d.choices[0].message.content);
  });

  test('stop sequences end the output before the stop text', async () => {
    const body = { model: server.app.scheduler.model!.id, messages: [{ role: 'user' as const, content: 'import os\nimport sys\n' }], max_tokens: 24, temperature: 0 };
    const full = (await server.client.chat.completions.create(body)).choices[0].message.content ?? '';
    assert.ok(full.length >= 6, `need some output to pick a stop string from, got ${JSON.stringify(full)}`);
    const stop = full.slice(3, 6);
    const expected = full.slice(0, full.indexOf(stop));
    const cut = await server.client.chat.completions.create({ ...body, stop: [stop] });
    assert.equal(cut.choices[0].message.content, expected);
    assert.equal(cut.choices[0].finish_reason, 'stop');
    const stream = await server.client.chat.completions.create({ ...body, stop, stream: true });
    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(streamed, expected);
    assert.equal(finish, 'stop');
  });
});

describe('chat completions with tools and response_format', () => {
  const tools = [
    {
      type: 'function' as const,
      function: { name: 'run_tests', description: 'Run the test suite.', parameters: { type: 'object', properties: { watch: { type: 'boolean' } }, required: ['watch'], additionalProperties: false } },
    },
  ];

  test('a forced tool call comes back as tool_calls, streamed and not', async () => {
    const body = { model: server.app.scheduler.model!.id, messages: [{ role: 'user' as const, content: 'run them' }], tools, tool_choice: 'required' as const, max_tokens: 64 };
    const res = await server.client.chat.completions.create(body);
    assert.equal(res.choices[0].finish_reason, 'tool_calls');
    const call = res.choices[0].message.tool_calls![0] as { id: string; function: { name: string; arguments: string } };
    assert.match(call.id, /^call_/);
    assert.equal(call.function.name, 'run_tests');
    assert.equal(typeof JSON.parse(call.function.arguments).watch, 'boolean');

    const stream = await server.client.chat.completions.create({ ...body, stream: true });
    const deltas = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta.tool_calls ?? []) deltas.push(tc);
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(deltas[0].function?.name, 'run_tests');
    assert.equal(deltas[0].index, 0);
  });

  test('a tool result in the history is rendered and the conversation continues', async () => {
    const res = await server.client.chat.completions.create({
      model: server.app.scheduler.model!.id,
      tools,
      max_tokens: 4,
      messages: [
        { role: 'user', content: 'run them' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'run_tests', arguments: '{"watch":false}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '12 passed' },
      ],
    });
    assert.ok(res.usage!.prompt_tokens > 20);
  });

  test('response_format json_schema output parses', async () => {
    const res = await server.client.chat.completions.create({
      model: server.app.scheduler.model!.id,
      messages: [{ role: 'user', content: 'status?' }],
      max_tokens: 100,
      response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object', properties: { green: { type: 'boolean' } }, required: ['green'], additionalProperties: false } } },
    });
    assert.equal(typeof JSON.parse(res.choices[0].message.content!).green, 'boolean');
  });
});

describe('chat completion errors', () => {
  async function expectApiError(promise: Promise<unknown>, status: number, code: string | null, param?: string | null) {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof APIError, `expected an APIError, got ${String(err)}`);
      assert.equal(err.status, status);
      assert.equal(err.code ?? null, code);
      if (param !== undefined) assert.equal(err.param ?? null, param);
      assert.equal(typeof err.message, 'string');
      return true;
    });
  }

  test('unknown model -> 404 model_not_found', async () => {
    await expectApiError(server.client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }), 404, 'model_not_found', 'model');
  });

  test('schema violation -> 400 naming the param', async () => {
    const model = server.app.scheduler.model!.id;
    await expectApiError(server.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], temperature: 7 }), 400, 'invalid_value', 'temperature');
    await expectApiError(server.client.chat.completions.create({ model, messages: [] }), 400, 'invalid_value', 'messages');
    await expectApiError(server.client.chat.completions.create({ model } as never), 400, 'missing_required_parameter', 'messages');
    await expectApiError(
      server.client.chat.completions.create({ model, messages: [{ role: 'wizard', content: 'hi' }] } as never),
      400,
      'invalid_value',
      'messages[0].role',
    );
  });

  test('prompt longer than the context -> 400 context_length_exceeded', async () => {
    const content = 'const value = compute(alpha, beta, gamma);\n'.repeat(400);
    await expectApiError(
      server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content }] }),
      400,
      'context_length_exceeded',
      'messages',
    );
    await expectApiError(
      server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content }], stream: true }),
      400,
      'context_length_exceeded',
      'messages',
    );
  });

  test('malformed JSON, unknown route and wrong content type give the OpenAI envelope', async () => {
    const bad = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
    assert.equal(bad.status, 400);
    const badBody = (await bad.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(badBody.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(badBody.error.type, 'invalid_request_error');
    assert.equal(badBody.error.code, null);

    const missing = await fetch(`${server.url}/v1/nothing-here`);
    assert.equal(missing.status, 404);
    const missingBody = (await missing.json()) as { error: Record<string, unknown> };
    assert.equal(missingBody.error.type, 'invalid_request_error');
    assert.match(String(missingBody.error.message), /nothing-here/);
  });

  test('the server still serves after every error above', async () => {
    const res = await server.client.chat.completions.create({ model: server.app.scheduler.model!.id, messages: [{ role: 'user', content: 'ok?' }], max_tokens: 2 });
    assert.equal(res.object, 'chat.completion');
    assert.equal(server.app.scheduler.readiness().isReady, true);
  });
});

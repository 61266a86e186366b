import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { APIError } from 'openai';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
let model: string;
before(async () => {
  server = await startServer({ FLINT_CONTEXT_SIZE: '8192' });
  model = server.app.scheduler.model!.id;
});
after(() => server?.close());

const readFileTool = {
  type: 'function' as const,
  name: 'read_file',
  description: 'Read a file of the project.',
  parameters: { type: 'object', properties: { path: { type: 'string', enum: ['src/app.ts', 'README.md'] } }, required: ['path'], additionalProperties: false },
  strict: true,
};

async function collect(stream: AsyncIterable<{ type: string; sequence_number: number }>) {
  const events = [];
  for await (const event of stream) events.push(event);
  return events;
}

describe('Responses API over HTTP', () => {
  test('non-streaming text response with usage from real counts', async () => {
    const res = await server.client.responses.create({ model, input: 'function add(a, b) {', max_output_tokens: 8, temperature: 0 });
    assert.match(res.id, /^resp_/);
    assert.equal(res.object, 'response');
    assert.ok(res.status === 'completed' || res.status === 'incomplete');
    if (res.status === 'incomplete') assert.equal(res.incomplete_details?.reason, 'max_output_tokens');
    assert.equal(res.output[0].type, 'message');
    assert.equal(typeof res.output_text, 'string');
    const usage = res.usage!;
    assert.ok(usage.input_tokens > 0);
    assert.ok(usage.output_tokens >= 1 && usage.output_tokens <= 8);
    assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
    assert.equal(usage.output_tokens_details.reasoning_tokens, 0);
    assert.equal(typeof usage.input_tokens_details.cached_tokens, 'number');
  });

  test('streaming events are ordered, numbered from 0 and end with exactly one terminal event', async () => {
    const stream = await server.client.responses.create({ model, input: 'Write a loop in Python.', max_output_tokens: 12, temperature: 0, stream: true });
    const events = await collect(stream);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    assert.equal(events[0].type, 'response.created');
    assert.equal(events[1].type, 'response.in_progress');
    const terminal = events.filter((e) => ['response.completed', 'response.incomplete', 'response.failed'].includes(e.type));
    assert.equal(terminal.length, 1);
    assert.equal(events.at(-1), terminal[0]);
    const types = events.map((e) => e.type);
    const textDone = types.indexOf('response.output_text.done');
    assert.ok(types.indexOf('response.output_item.added') < types.indexOf('response.content_part.added'));
    assert.ok(textDone < types.indexOf('response.content_part.done'));
    assert.ok(types.indexOf('response.content_part.done') < types.indexOf('response.output_item.done'));
    const deltas = events.filter((e) => e.type === 'response.output_text.delta') as unknown as Array<{ delta: string }>;
    const done = events[textDone] as unknown as { text: string };
    assert.equal(deltas.map((d) => d.delta).join(''), done.text);
  });

  test('the SDK streaming helper assembles the same response the events describe', async () => {
    const stream = server.client.responses.stream({ model, input: 'const answer =', max_output_tokens: 10, temperature: 0 });
    let deltas = '';
    stream.on('response.output_text.delta', (event) => (deltas += event.delta));
    const final = await stream.finalResponse();
    assert.equal(final.output_text, deltas);
    assert.ok(final.usage!.output_tokens >= 1);
    assert.equal((await server.client.responses.retrieve(final.id)).output_text, final.output_text);
  });

  test('previous_response_id continues a stored response and reuses its cached prefix', async () => {
    const first = await server.client.responses.create({ model, instructions: 'You write TypeScript.', input: 'Define a Point type.', max_output_tokens: 8, temperature: 0 });
    const second = await server.client.responses.create({
      model,
      instructions: 'You write TypeScript.',
      previous_response_id: first.id,
      input: [{ role: 'user', content: 'Now add a distance function.' }],
      max_output_tokens: 8,
      temperature: 0,
    });
    assert.equal(second.previous_response_id, first.id);
    assert.ok(second.usage!.input_tokens > first.usage!.input_tokens);
    assert.ok(second.usage!.input_tokens_details.cached_tokens >= first.usage!.input_tokens - 1, `cached ${second.usage!.input_tokens_details.cached_tokens}`);
    const items = await server.client.responses.inputItems.list(second.id, { order: 'asc' });
    const kinds = items.data.map((i) => (i.type === 'message' ? `message:${i.role}` : i.type));
    assert.deepEqual(kinds, ['message:user', 'message:assistant', 'message:user']);
  });

  test('a function call round trip: function_call, then function_call_output continues the turn', async () => {
    const stream = await server.client.responses.create({ model, input: 'Open the app entry point.', tools: [readFileTool], tool_choice: 'required', max_output_tokens: 64, stream: true });
    const events = await collect(stream);
    const types = events.map((e) => e.type);
    assert.ok(types.includes('response.function_call_arguments.delta'));
    const argsDone = events.find((e) => e.type === 'response.function_call_arguments.done') as unknown as { name: string; arguments: string };
    assert.equal(argsDone.name, 'read_file');
    assert.ok(['src/app.ts', 'README.md'].includes(JSON.parse(argsDone.arguments).path));
    const completed = events.at(-1) as unknown as { type: string; response: { id: string; status: string; output: Array<{ type: string; call_id: string; name: string; arguments: string }> } };
    assert.equal(completed.type, 'response.completed');
    const call = completed.response.output.find((o) => o.type === 'function_call')!;
    assert.match(call.call_id, /^call_/);

    const next = await server.client.responses.create({
      model,
      previous_response_id: completed.response.id,
      tools: [readFileTool],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'export const app = 1;' }],
      max_output_tokens: 8,
    });
    assert.ok(next.status === 'completed' || next.status === 'incomplete');
    assert.ok(next.usage!.input_tokens_details.cached_tokens > 0);
    const items = await server.client.responses.inputItems.list(next.id, { order: 'asc' });
    assert.deepEqual(items.data.map((i) => i.type), ['message', 'function_call', 'function_call_output']);
  });

  test('json_schema output is enforced with a grammar and parses', async () => {
    const res = await server.client.responses.create({
      model,
      input: 'Describe the build.',
      max_output_tokens: 200,
      text: {
        format: {
          type: 'json_schema',
          name: 'build',
          strict: true,
          schema: { type: 'object', properties: { ok: { type: 'boolean' }, kind: { type: 'string', enum: ['debug', 'release'] } }, required: ['ok', 'kind'], additionalProperties: false },
        },
      },
    });
    assert.equal(res.status, 'completed');
    const parsed = JSON.parse(res.output_text) as { ok: boolean; kind: string };
    assert.equal(typeof parsed.ok, 'boolean');
    assert.ok(['debug', 'release'].includes(parsed.kind));
  });

  test('retrieve, input items pagination, delete', async () => {
    const res = await server.client.responses.create({
      model,
      input: [
        { role: 'user', content: 'one' },
        { role: 'assistant', content: 'two' },
        { role: 'user', content: 'three' },
      ],
      max_output_tokens: 2,
      metadata: { ticket: 'FL-1' },
    });
    const got = await server.client.responses.retrieve(res.id);
    assert.equal(got.id, res.id);
    assert.deepEqual(got.metadata, { ticket: 'FL-1' });
    const page1 = await server.client.responses.inputItems.list(res.id, { limit: 2 });
    assert.equal(page1.data.length, 2);
    assert.equal(page1.has_more, true);
    const page2 = await server.client.responses.inputItems.list(res.id, { limit: 2, after: page1.data[1].id });
    assert.equal(page2.data.length, 1);
    assert.equal(page2.has_more, false);
    const deleted = await server.client.responses.delete(res.id);
    assert.equal((deleted as unknown as { deleted: boolean } | undefined)?.deleted ?? true, true);
    await assert.rejects(server.client.responses.retrieve(res.id), (err: unknown) => err instanceof APIError && err.status === 404);
  });

  test('store:false responses are not retrievable', async () => {
    const res = await server.client.responses.create({ model, input: 'ephemeral', max_output_tokens: 2, store: false });
    await assert.rejects(server.client.responses.retrieve(res.id), (err: unknown) => err instanceof APIError && err.status === 404);
    await assert.rejects(
      server.client.responses.create({ model, previous_response_id: res.id, input: 'more', max_output_tokens: 2 }),
      (err: unknown) => err instanceof APIError && err.status === 400 && err.code === 'previous_response_not_found' && err.param === 'previous_response_id',
    );
  });

  test('cancel stops an in-flight response, which ends cancelled', async () => {
    const stream = await server.client.responses.create({ model, input: 'a long answer', max_output_tokens: 4000, stream: true });
    let id = '';
    let cancelled: { status: string } | undefined;
    const events = [];
    for await (const event of stream) {
      events.push(event);
      if (event.type === 'response.created') id = event.response.id;
      if (event.type === 'response.output_text.delta' && !cancelled) cancelled = (await server.client.responses.cancel(id)) as unknown as { status: string };
    }
    assert.equal(cancelled?.status, 'cancelled');
    const last = events.at(-1)!;
    assert.equal(last.type, 'response.incomplete');
    assert.equal((last as unknown as { response: { status: string } }).response.status, 'cancelled');
    assert.equal((await server.client.responses.retrieve(id)).status, 'cancelled');
  });

  test('a Codex-shaped request (long instructions, tools, store:false, include, reasoning:null) completes', async () => {
    const instructions = 'You are a coding agent running in a terminal. Follow the repository conventions.\n'.repeat(120);
    const tools = ['shell', 'apply_patch_fn', 'read_file', 'list_dir', 'grep', 'update_plan', 'view_image_fn', 'web_fetch', 'write_file'].map((name) => ({
      type: 'function' as const,
      name,
      description: `Tool ${name} for the agent.`,
      parameters: { type: 'object', properties: { arg: { type: 'string' } }, required: ['arg'], additionalProperties: false },
      strict: false,
    }));
    const body = {
      model,
      instructions,
      input: [
        { type: 'message' as const, role: 'developer' as const, content: [{ type: 'input_text' as const, text: '<environment_context>cwd=/repo</environment_context>' }] },
        { type: 'message' as const, role: 'user' as const, content: [{ type: 'input_text' as const, text: 'Fix the failing test.' }] },
      ],
      tools,
      tool_choice: 'auto' as const,
      parallel_tool_calls: false,
      reasoning: null,
      store: false,
      stream: true as const,
      include: ['reasoning.encrypted_content'],
      prompt_cache_key: 'codex-session-1',
      max_output_tokens: 16,
    };
    const events = await collect((await server.client.responses.create(body as never)) as unknown as AsyncIterable<{ type: string; sequence_number: number }>);
    const last = events.at(-1)!;
    assert.ok(['response.completed', 'response.incomplete'].includes(last.type), last.type);
    const again = await collect((await server.client.responses.create(body as never)) as unknown as AsyncIterable<{ type: string; sequence_number: number }>);
    const usage = (again.at(-1) as unknown as { response: { usage: { input_tokens: number; input_tokens_details: { cached_tokens: number } } } }).response.usage;
    assert.ok(usage.input_tokens > 1000);
    assert.ok(usage.input_tokens_details.cached_tokens >= usage.input_tokens - 1, 'the same prefix is served from the cache (prompt_cache_key affinity)');
  });
});

describe('Responses API errors', () => {
  const expect400 = (promise: Promise<unknown>, code: string | null, param: string) =>
    assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof APIError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.code ?? null, code);
      assert.equal(err.param, param);
      return true;
    });

  test('unsupported inputs and tools are 400s naming the param', async () => {
    await expect400(server.client.responses.create({ model, input: 'x', tools: [{ type: 'teleport' }] } as never), 'unsupported_tool_type', 'tools[0].type');
    await expect400(
      server.client.responses.create({ model, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://x/y.png', detail: 'auto' }] }] } as never),
      'invalid_value',
      'input[0].content[0]',
    );
    await expect400(server.client.responses.create({ model, input: 'x', background: true }), 'unsupported_parameter', 'background');
    await expect400(server.client.responses.create({ model, input: 'x', temperature: 3 }), 'invalid_value', 'temperature');
    await expect400(server.client.responses.create({ model, previous_response_id: 'resp_doesnotexist', input: 'x' }), 'previous_response_not_found', 'previous_response_id');
    await expect400(
      server.client.responses.create({ model, input: [{ type: 'function_call_output', call_id: 'call_nope', output: 'x' }] } as never),
      'invalid_value',
      'input',
    );
  });

  test('context overflow is a 400 context_length_exceeded before any byte, streaming or not', async () => {
    const input = 'const value = compute(alpha, beta, gamma);\n'.repeat(2500);
    await expect400(server.client.responses.create({ model, input }), 'context_length_exceeded', 'input');
    await expect400(server.client.responses.create({ model, input, stream: true }), 'context_length_exceeded', 'input');
  });
});

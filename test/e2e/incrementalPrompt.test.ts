import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { responseOf, WsSession } from '../helpers/wsSession.js';

// A warm turn renders, tokenizes and sends over IPC only what is new: observed through the
// counters the worker and the gateway keep (flint_prompt_renders_total, flint_ipc_chat_messages_total).
let server: TestServer;

before(async () => {
  server = await startServer({ FLINT_SLOTS: '1' });
});
after(() => server.close());

async function counters() {
  const renders = new Map((await server.app.metrics.promptRenders.get()).values.map((v) => [`${v.labels.kind}/${v.labels.reason}`, v.value]));
  const messages = new Map((await server.app.metrics.chatMessages.get()).values.map((v) => [String(v.labels.kind), v.value]));
  return { renders: (key: string) => renders.get(key) ?? 0, messages: (kind: string) => messages.get(kind) ?? 0 };
}

const tools = [{ type: 'function', name: 'read_file', parameters: { type: 'object', properties: { path: { type: 'string' } } } }];

test('WebSocket turns chained by previous_response_id render only their new messages and send only those to the worker', async () => {
  const ws = new WsSession(server.client);
  try {
    await new Promise<void>((resolve) => ws.ws.socket.once('open', () => resolve()));
    const first = responseOf(await ws.turn({ model: server.app.scheduler.model!.id, instructions: 'You are a coding agent.', input: 'Read the failing test.', tools, max_output_tokens: 4, store: false }));
    assert.notEqual(first.status, 'failed');
    let previous = first;
    let messagesBefore = 2; // instructions and the user message
    const before = await counters();
    const turns = 4;
    for (let turn = 0; turn < turns; turn++) {
      const input = [
        { type: 'message', role: 'assistant', content: `Noted ${turn}.` },
        { type: 'message', role: 'user', content: `Turn ${turn}: keep looking.` },
      ];
      const response = responseOf(await ws.turn({ model: server.app.scheduler.model!.id, instructions: 'You are a coding agent.', previous_response_id: previous.id, input, tools, max_output_tokens: 4, store: false }));
      assert.notEqual(response.status, 'failed', `turn ${turn}`);
      // Everything but the previous answer's last token (never evaluated) is in the cache.
      assert.ok(response.usage.input_tokens_details.cached_tokens > 0, `turn ${turn} reused the slot's tokens`);
      previous = response;
      messagesBefore += (previous.output.length > 0 ? 1 : 0) + input.length;
    }
    const now = await counters();
    assert.equal(now.renders('incremental/') - before.renders('incremental/'), turns, 'every continued turn rendered incrementally');
    assert.equal(now.renders('full/diverged') - before.renders('full/diverged'), 0);
    const kept = now.messages('kept') - before.messages('kept');
    const sent = now.messages('sent') - before.messages('sent');
    // Each turn sends its own two messages and the previous answer at most; the history stays in the worker.
    assert.ok(sent <= turns * 3, `sent ${sent} messages in ${turns} turns`);
    assert.ok(kept >= 2 + 3 * (turns - 1), `kept ${kept} messages`);
    assert.ok(messagesBefore > sent);
  } finally {
    ws.close();
  }
});

test('HTTP: the same conversation again reuses the prompt; a continued one renders only what it adds', async () => {
  const model = server.app.scheduler.model!.id;
  const messages = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'Explain the slot table in one line.' },
  ];
  const first = await server.client.chat.completions.create({ model, messages, max_tokens: 3 });
  const before = await counters();
  const again = await server.client.chat.completions.create({ model, messages, max_tokens: 3 });
  assert.ok((again.usage?.prompt_tokens_details?.cached_tokens ?? 0) > 0);
  const continued = [...messages, { role: 'assistant' as const, content: first.choices[0].message.content ?? '' }, { role: 'user' as const, content: 'Shorter.' }];
  await server.client.chat.completions.create({ model, messages: continued, max_tokens: 3 });
  const now = await counters();
  assert.equal(now.renders('reused/') - before.renders('reused/'), 1);
  assert.equal(now.renders('incremental/') - before.renders('incremental/'), 1);
  // The repeat sent nothing but kept both messages; the continuation sent its two new ones.
  assert.equal(now.messages('kept') - before.messages('kept'), 2 + 2);
  assert.equal(now.messages('sent') - before.messages('sent'), 0 + 2);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestId } from '../../src/core/types.js';
import { toAnthropicError } from '../../src/protocol/anthropic/MessagesEncoder.js';
import { parseMessagesRequest } from '../../src/protocol/anthropic/parseMessagesRequest.js';

const id = 'r' as RequestId;
const served = () => 'm';
const attribution = { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.0.14.abc; cc_entrypoint=cli; cch=7f3e2;' };
const body = {
  model: 'm',
  max_tokens: 8,
  system: [attribution, { type: 'text', text: 'You are Claude Code.' }, { type: 'text', text: 'Be brief.' }],
  messages: [
    { role: 'user', content: 'Weather?' },
    { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '18 C' }, { type: 'text', text: 'Thanks.' }] },
  ],
};

test('the attribution block is left out of the system prompt by default, and kept when the switch is off', () => {
  const dropped = parseMessagesRequest(body, id, served, { dropAttributionBlock: true });
  const kept = parseMessagesRequest(body, id, served, { dropAttributionBlock: false });
  assert.ok(dropped.request.input.type === 'chat' && kept.request.input.type === 'chat');
  assert.deepEqual(dropped.request.input.messages[0], { role: 'system', content: 'You are Claude Code.\n\nBe brief.' });
  assert.equal(kept.request.input.messages[0].content, `${attribution.text}\n\nYou are Claude Code.\n\nBe brief.`);
});

test('tool_use and tool_result blocks become a call and its result; text after a result stays a user message', () => {
  const parsed = parseMessagesRequest(body, id, served, { dropAttributionBlock: true });
  assert.ok(parsed.request.input.type === 'chat');
  const [, user, assistant, result, followUp] = parsed.request.input.messages;
  assert.deepEqual(user, { role: 'user', content: 'Weather?' });
  assert.deepEqual(assistant, { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
  assert.deepEqual(result, { role: 'tool', toolCallId: 'toolu_1', content: '18 C' });
  assert.deepEqual(followUp, { role: 'user', content: 'Thanks.', toolCalls: undefined });
});

test('tool_choice maps to Flint choices; max_tokens is required except for count_tokens', () => {
  const tools = [{ name: 'a', input_schema: { type: 'object' } }, { name: 'b', input_schema: { type: 'object' } }];
  const pick = (choice: unknown) => parseMessagesRequest({ ...body, tools, tool_choice: choice }, id, served, { dropAttributionBlock: true }).request.toolChoice;
  assert.equal(pick({ type: 'any' }), 'required');
  assert.equal(pick({ type: 'none' }), 'none');
  assert.deepEqual(pick({ type: 'tool', name: 'b' }), { name: 'b' });
  assert.throws(() => pick({ type: 'tool', name: 'c' }), /not in tools/);
  assert.throws(() => parseMessagesRequest({ ...body, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, id, served, { dropAttributionBlock: true }), /not supported/);
  const { max_tokens: _unused, ...noMax } = body;
  assert.throws(() => parseMessagesRequest(noMax, id, served, { dropAttributionBlock: true }), /max_tokens/);
  assert.equal(parseMessagesRequest(noMax, id, served, { dropAttributionBlock: true }, true).request.isWarmupOnly, true);
});

test('system messages inside the conversation (Claude Code sends them) stay system messages in place', () => {
  const parsed = parseMessagesRequest(
    { model: 'm', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }, { role: 'system', content: 'Available agent types: general.' }, { role: 'user', content: [{ type: 'text', text: 'go' }] }] },
    id,
    served,
    { dropAttributionBlock: true },
  );
  assert.ok(parsed.request.input.type === 'chat');
  assert.deepEqual(parsed.request.input.messages.map((m) => [m.role, m.content]), [['user', 'hi'], ['system', 'Available agent types: general.'], ['user', 'go']]);
});

test("errors get Anthropic's type for their status: other 4xx are invalid_request_error, only a 5xx is api_error", () => {
  const typeOf = (status: number, isOverloaded = false) => toAnthropicError(status, 'm', isOverloaded);
  for (const [status, type] of [[400, 'invalid_request_error'], [401, 'authentication_error'], [403, 'permission_error'], [404, 'not_found_error'], [413, 'request_too_large'], [429, 'rate_limit_error']] as const) {
    assert.deepEqual(typeOf(status), { status, body: { type: 'error', error: { type, message: 'm' } } });
  }
  // A wrong method or content type is the client's mistake, not a server failure.
  for (const status of [405, 415, 426, 499]) assert.equal(typeOf(status).body.error.type, 'invalid_request_error', String(status));
  for (const status of [500, 503, 504]) assert.equal(typeOf(status).body.error.type, 'api_error', String(status));
  assert.deepEqual(typeOf(503, true), { status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'm' } } });
});

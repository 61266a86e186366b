import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestId } from '../../src/core/types.js';
import { toOllamaToolCall } from '../../src/protocol/ollama/OllamaEncoder.js';
import { parseOllamaChat, parseOllamaGenerate } from '../../src/protocol/ollama/parseOllamaRequest.js';

const id = 'r' as RequestId;
const served = (name: unknown) => {
  if (name !== 'flint') throw new Error(`unknown model ${String(name)}`);
  return 'flint';
};

test('calls get ids; tool results answer the oldest open call (of their tool_name when given)', () => {
  const parsed = parseOllamaChat(
    {
      model: 'flint:latest',
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'read', arguments: { path: 'a' } } }, { function: { name: 'grep', arguments: { q: 'x' } } }] },
        { role: 'tool', content: 'grep result', tool_name: 'grep' },
        { role: 'tool', content: 'read result' },
      ],
    },
    id,
    served,
  );
  assert.equal(parsed.isStream, true, 'Ollama streams unless told otherwise');
  const input = parsed.request.input;
  assert.ok(input.type === 'chat');
  const [, assistant, grep, read] = input.messages;
  assert.deepEqual(assistant.toolCalls, [
    { id: 'call_1_0', name: 'read', arguments: '{"path":"a"}' },
    { id: 'call_1_1', name: 'grep', arguments: '{"q":"x"}' },
  ]);
  assert.equal(grep.toolCallId, 'call_1_1');
  assert.equal(read.toolCallId, 'call_1_0');
});

test('options map to sampling and caps; format maps to grammars; suffix makes fill-in-the-middle', () => {
  const chat = parseOllamaChat({ model: 'flint', messages: [], format: 'json', options: { temperature: 0.2, top_k: 5, num_predict: -1, stop: ['\n'], num_ctx: 999_999, mirostat: 2 } }, id, served);
  assert.deepEqual(chat.request.sampling.temperature, 0.2);
  assert.equal(chat.request.sampling.topK, 5);
  assert.equal(chat.request.maxTokens, undefined);
  assert.deepEqual(chat.request.stop, ['\n']);
  assert.deepEqual(chat.request.responseFormat, { type: 'json_object' });
  const schema = { type: 'object', properties: { a: { type: 'string' } } };
  assert.deepEqual(parseOllamaChat({ model: 'flint', messages: [], format: schema }, id, served).request.responseFormat, { type: 'json_schema', schema });
  const fim = parseOllamaGenerate({ model: 'flint', prompt: 'def f(', suffix: '):', stream: false, options: { num_predict: 8 } }, id, served);
  assert.deepEqual(fim.request.input, { type: 'infill', prefix: 'def f(', suffix: '):' });
  assert.equal(fim.request.maxTokens, 8);
  assert.equal(fim.isStream, false);
  const chatLike = parseOllamaGenerate({ model: 'flint', prompt: 'hi', system: 'be brief' }, id, served);
  assert.deepEqual(chatLike.request.input, { type: 'chat', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }] });
  assert.throws(() => parseOllamaChat({ model: 'other', messages: [] }, id, served), /unknown model other/);
});

test('tool calls go back without ids and with object arguments', () => {
  assert.deepEqual(toOllamaToolCall({ id: 'call_1', name: 'read', arguments: '{"path":"a"}' }), { function: { name: 'read', arguments: { path: 'a' } } });
});

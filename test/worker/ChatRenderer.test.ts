import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JinjaTemplateChatWrapper } from 'node-llama-cpp';
import type { ChatMessage, GenerateRequest, RequestId, ToolSpec } from '../../src/core/types.js';
import { ChatRenderer, type RenderedChat } from '../../src/worker/ChatRenderer.js';
import { Engine, toChatHistory } from '../../src/worker/Engine.js';
import { testEngineSettings, useTestModel } from '../helpers/engine.js';
import { Rng } from '../helpers/fuzz.js';
import { thinkModelPath, tinyModelPath } from '../helpers/testModel.js';

const signal = new AbortController().signal;
const tools: ToolSpec[] = [
  { name: 'read_file', description: 'Reads a file.', parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
  { name: 'run_tests', parameters: { type: 'object', properties: { filter: { type: 'string' } } } },
];

function chatRequest(messages: readonly ChatMessage[], withTools: boolean): GenerateRequest {
  return { id: 'r' as RequestId, model: 'm', input: { type: 'chat', messages }, sampling: {}, stop: [], tools: withTools ? tools : undefined };
}

/** A deterministic pseudo-random source (the fuzz helpers' generator). */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

const snippets = ['const a = 1;', '  indented\n\tand tabbed', 'ünïcödé and emoji 🚀', '', ' leading space', 'trailing newline\n', '{"json": [1, 2]}', '<tag> & text', 'x'.repeat(300)];

/** One agent turn: the model's answer (text, calls or both, maybe a thought), the tools' results, then maybe a user message. */
function nextTurn(rand: () => number, turn: number, hasThought: boolean): ChatMessage[] {
  const pick = () => snippets[Math.floor(rand() * snippets.length)];
  const calls = rand() < 0.6 ? Array.from({ length: 1 + Math.floor(rand() * 2) }, (_, k) => ({ id: `call_${turn}_${k}`, name: k % 2 ? 'run_tests' : 'read_file', arguments: JSON.stringify({ path: pick() }) })) : [];
  const reasoning = hasThought && rand() < 0.7 ? `<think>\n${pick()} thought ${turn}\n</think>\n\n` : undefined;
  const out: ChatMessage[] = [{ role: 'assistant', content: calls.length > 0 && rand() < 0.5 ? '' : `answer ${turn} ${pick()}`, toolCalls: calls.length > 0 ? calls : undefined, reasoning }];
  for (const call of calls) out.push({ role: 'tool', toolCallId: call.id, content: `result of ${call.id}: ${pick()}` });
  if (calls.length === 0 || rand() < 0.4) out.push({ role: 'user', content: `user ${turn}: ${pick()}` });
  return out;
}

for (const [name, modelPath] of [
  ['tiny (Qwen template)', tinyModelPath],
  ['tiny-think (Jinja template with thoughts)', thinkModelPath],
] as const) {
  describe(`incremental chat prompts, ${name}`, () => {
    let engine: Engine;
    before(async () => {
      engine = await Engine.create(testEngineSettings(await modelPath()), () => undefined);
    });
    after(() => engine.dispose());

    test('the template passes the probe', () => {
      assert.deepEqual(engine.incrementalRendering, { isIncremental: true, failure: undefined });
    });

    test('continued turns give exactly the tokens of rendering the whole conversation', async () => {
      const hasThought = name.startsWith('tiny-think');
      for (let seed = 1; seed <= 6; seed++) {
        const rand = random(seed);
        const withTools = seed % 2 === 1;
        let messages: ChatMessage[] = [...(seed % 3 === 0 ? [] : [{ role: 'system' as const, content: `System ${seed}: ${snippets[seed]}` }]), { role: 'user', content: 'Fix the failing test.' }];
        let memo: RenderedChat | undefined;
        for (let turn = 0; turn < 12; turn++) {
          const incremental = await engine.prepare(chatRequest(messages, withTools), signal, memo);
          const whole = await engine.prepare(chatRequest(messages, withTools), signal, undefined);
          assert.deepEqual(incremental.tokens, whole.tokens, `seed ${seed}, turn ${turn}`);
          assert.equal(incremental.thought?.openedByPrompt, whole.thought?.openedByPrompt);
          assert.deepEqual(incremental.templateStops, whole.templateStops);
          assert.equal(incremental.render?.mode, turn === 0 ? 'full' : 'incremental', `seed ${seed}, turn ${turn}`);
          memo = incremental.render?.rendered;
          messages = [...messages, ...nextTurn(rand, turn, hasThought)];
        }
      }
    });

    test('the same messages reuse the prompt; an edited history is rendered whole', async () => {
      const messages: ChatMessage[] = [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hello' },
      ];
      const first = await engine.prepare(chatRequest(messages, true), signal, undefined);
      assert.deepEqual([first.render?.mode, first.render?.reason], ['full', 'cold']);
      const again = await engine.prepare(chatRequest(messages.map((m) => ({ ...m })), true), signal, first.render?.rendered);
      assert.equal(again.render?.mode, 'reused');
      assert.deepEqual(again.tokens, first.tokens);
      const edited = [{ role: 'system' as const, content: 'You are verbose.' }, messages[1], { role: 'assistant' as const, content: 'Hi' }, { role: 'user' as const, content: 'More' }];
      const diverged = await engine.prepare(chatRequest(edited, true), signal, first.render?.rendered);
      assert.deepEqual([diverged.render?.mode, diverged.render?.reason], ['full', 'diverged']);
      assert.deepEqual(diverged.tokens, (await engine.prepare(chatRequest(edited, true), signal, undefined)).tokens);
      // Other tools render another system prompt: not a continuation either.
      const continued = [...messages, { role: 'assistant' as const, content: 'Hi' }, { role: 'user' as const, content: 'More' }];
      const otherTools = await engine.prepare(chatRequest(continued, false), signal, first.render?.rendered);
      assert.deepEqual([otherTools.render?.mode, otherTools.render?.reason], ['full', 'diverged']);
    });
  });
}

describe('a template that does not render message by message', () => {
  const tiny = useTestModel(tinyModelPath);

  test('fails the probe and is always rendered whole, counted as such', async () => {
    // Every message carries the number of messages in the conversation: appending changes earlier text.
    const template =
      '{% for message in messages %}<|im_start|>{{ message.role }} of {{ messages|length }}\n{{ message.content }}<|im_end|>\n{% endfor %}' +
      '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';
    const wrapper = new JinjaTemplateChatWrapper({ template });
    const model = tiny.model();
    const renderer = new ChatRenderer(wrapper, model.tokenizer, undefined, (messages) => toChatHistory(messages));
    assert.equal(await renderer.probe(signal), false);
    assert.match(renderer.probeFailure ?? '', /probe conversation \d+/);
    const messages: ChatMessage[] = [{ role: 'user', content: 'one' }];
    const first = await renderer.render(messages, [], undefined, signal);
    const next = [...messages, { role: 'assistant' as const, content: 'two' }, { role: 'user' as const, content: 'three' }];
    const second = await renderer.render(next, [], first.rendered, signal);
    assert.deepEqual([second.mode, second.reason], ['full', 'template']);
    const text = model.detokenize(second.rendered.tokens, true);
    assert.match(text, /user of 4\none/);
  });
});

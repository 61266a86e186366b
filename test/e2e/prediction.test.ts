import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { APIError } from 'openai';
import { startServer, type TestServer } from '../helpers/startServer.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server?.close());

const ask = (prediction?: string) =>
  server.client.chat.completions.create({
    model: server.app.scheduler.model!.id,
    messages: [{ role: 'user', content: 'Rewrite this file with one change:\nexport const a = 1;\nexport const b = 2;\n' }],
    max_tokens: 40,
    temperature: 0,
    ...(prediction === undefined ? {} : { prediction: { type: 'content' as const, content: prediction } }),
  });

test('a prediction never changes the output; a right one is accepted, a wrong one rejected', async () => {
  const plain = await ask();
  const text = plain.choices[0].message.content!;
  assert.ok(text.length > 0);
  assert.equal(plain.usage!.completion_tokens_details!.accepted_prediction_tokens, 0);

  const right = await ask(text);
  assert.equal(right.choices[0].message.content, text);
  const rightDetails = right.usage!.completion_tokens_details!;
  assert.ok(rightDetails.accepted_prediction_tokens! >= plain.usage!.completion_tokens - 2, `accepted ${rightDetails.accepted_prediction_tokens} of ${plain.usage!.completion_tokens}`);

  const wrong = await ask('completely unrelated words that the model will not produce at all, '.repeat(3));
  assert.equal(wrong.choices[0].message.content, text);
  assert.ok(wrong.usage!.completion_tokens_details!.rejected_prediction_tokens! > 0);
  assert.equal(wrong.usage!.completion_tokens, plain.usage!.completion_tokens + wrong.usage!.completion_tokens_details!.rejected_prediction_tokens!);

  const half = text.slice(0, Math.floor(text.length / 2));
  const edited = await ask(half + ' DIFFERENT ' + text.slice(half.length));
  assert.equal(edited.choices[0].message.content, text);

  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^flint_predicted_tokens_total\{result="accepted"\} [1-9]\d*$/m);
  assert.match(metrics, /^flint_predicted_tokens_total\{result="rejected"\} [1-9]\d*$/m);
});

test('prediction with tools, or of another type, is a 400 naming the param', async () => {
  const model = server.app.scheduler.model!.id;
  const messages = [{ role: 'user' as const, content: 'x' }];
  await assert.rejects(
    server.client.chat.completions.create({ model, messages, prediction: { type: 'content', content: 'x' }, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] }),
    (err: unknown) => err instanceof APIError && err.status === 400 && err.param === 'prediction',
  );
  await assert.rejects(
    server.client.chat.completions.create({ model, messages, prediction: { type: 'file', content: 'x' } as never }),
    (err: unknown) => err instanceof APIError && err.status === 400 && err.param === 'prediction.type',
  );
});

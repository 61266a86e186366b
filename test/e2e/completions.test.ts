import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { APIError } from 'openai';
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { tinyModelPath } from '../helpers/testModel.js';

let server: TestServer;
let llama: Llama;
let model: LlamaModel;
before(async () => {
  server = await startServer({ FLINT_SLOTS: '1' });
  llama = await getLlama({ gpu: false, build: 'never' });
  model = await llama.loadModel({ modelPath: await tinyModelPath() });
});
after(async () => {
  await server?.close();
  await model?.dispose();
  await llama?.dispose();
});

const prefix = 'def add(a, b):\n    ';
const suffix = '\n\nprint(add(1, 2))\n';

test('a plain completion defaults to 16 tokens and reports usage', async () => {
  const res = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: 'import numpy as np\n', temperature: 0 });
  assert.equal(res.object, 'text_completion');
  assert.match(res.id, /^cmpl-/);
  assert.ok(res.usage!.completion_tokens <= 16);
  assert.equal(res.usage!.prompt_tokens, model.tokenize('import numpy as np\n', false).length);
});

test('suffix makes it fill-in-the-middle with the model FIM tokens, and no special token leaks', async () => {
  const res = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: prefix, suffix, max_tokens: 24, temperature: 0 });
  const expected = model.tokenize(`<|fim_prefix|>${prefix}<|fim_suffix|>${suffix}<|fim_middle|>`, true).length;
  assert.equal(res.usage!.prompt_tokens, expected);
  assert.doesNotMatch(res.choices[0].text, /<\|fim_|<\|endoftext\|>|<\|im_/);
  assert.ok(['stop', 'length'].includes(res.choices[0].finish_reason));
  // An editor that keeps typing after the cursor changes only the suffix: the prefix stays cached.
  const edited = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: prefix, suffix: suffix + '# more\n', max_tokens: 4, temperature: 0 });
  assert.ok(edited.usage!.prompt_tokens_details!.cached_tokens! >= model.tokenize(prefix, false).length);
});

test('streaming sends text chunks, a finish chunk, usage and [DONE]', async () => {
  const stream = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: prefix, suffix, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  const whole = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: prefix, suffix, max_tokens: 8, temperature: 0 });
  assert.equal(text, whole.choices[0].text);
  assert.ok(finish === 'stop' || finish === 'length');
  assert.equal(usage?.completion_tokens, whole.usage!.completion_tokens);
});

test('echo prepends the prompt; invalid combinations are 400s', async () => {
  const res = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: 'x = ', echo: true, max_tokens: 2 });
  assert.ok(res.choices[0].text.startsWith('x = '));
  const reject = (body: object, param: string) =>
    assert.rejects(server.client.completions.create({ model: server.app.scheduler.model!.id, ...body } as never), (err: unknown) => err instanceof APIError && err.status === 400 && err.param === param);
  await reject({ prompt: 'x', suffix: 'y', echo: true }, 'echo');
  await reject({ prompt: 'x', n: 2 }, 'n');
  await reject({ prompt: ['a', 'b'] }, 'prompt');
});

test('a prompt of token ids is the same prompt as its text; ids outside the vocabulary are a 400', async () => {
  const text = 'import numpy as np\n';
  const ids = model.tokenize(text, false).map(Number);
  const byText = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: text, max_tokens: 8, temperature: 0 });
  const byIds = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: ids, max_tokens: 8, temperature: 0 });
  assert.equal(byIds.choices[0].text, byText.choices[0].text);
  assert.equal(byIds.usage!.prompt_tokens, ids.length);
  const nested = await server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: [ids], max_tokens: 8, temperature: 0 });
  assert.equal(nested.choices[0].text, byText.choices[0].text);
  await assert.rejects(
    server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: [1, 2, 1_000_000_000], max_tokens: 2 }),
    (err: unknown) => err instanceof APIError && err.status === 400 && /token id 1000000000 at 2 is not in the vocabulary/.test(err.message),
  );
  await assert.rejects(
    server.client.completions.create({ model: server.app.scheduler.model!.id, prompt: [[1, 2], [3]] as never, max_tokens: 2 }),
    (err: unknown) => err instanceof APIError && err.status === 400 && /batches are not supported/.test(err.message),
  );
});

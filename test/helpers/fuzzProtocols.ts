/**
 * Seeded hostile requests for the routes of the other protocols (test/e2e/faults.test.ts):
 * Anthropic's Messages, Ollama's API and llama.cpp's /infill. As in fuzz.ts, every case is a pure
 * function of its Rng and of the served model's name (a valid-ish body must name it, and what a
 * mutation leaves valid generates at most 4 tokens).
 */

import {
  BadBytes,
  badUtf8,
  contentTypes,
  randomBytesBody,
  deep,
  depthFor,
  describe,
  Entries,
  hostileSchema,
  hostileValue,
  jsonHeaders,
  longArray,
  longString,
  maxTokensValue,
  nestedItemsSchema,
  numberParam,
  Raw,
  seedValue,
  streamValue,
  toBody,
  toJsonText,
  weirdStrings,
  type HttpCase,
  type Rng,
} from './fuzz.js';

type Json = unknown;

/**
 * The protocol whose error envelope and stream framing an answer must follow; `openai` for a path
 * outside the three (`/api` without its slash, `/API/CHAT`), answered in the OpenAI envelope.
 */
export type Protocol = 'anthropic' | 'ollama' | 'infill' | 'openai';

/** A hostile request to one of these routes. */
export interface ProtocolCase extends HttpCase {
  readonly protocol: Protocol;
  /** Set where the answer is known exactly (a valid body on Ollama's routes is read whatever its content type). */
  readonly expectStatus?: number;
}

/** Wrong values for one field; `model` is the served model's name. */
type FieldGen = (rng: Rng, model: string) => Json;

/** One route family: its paths, a small valid body, and the fields `mutate` may touch. */
interface RouteSpec {
  readonly protocol: Protocol;
  readonly name: string;
  path(rng: Rng): string;
  base(rng: Rng, model: string, path: string): Record<string, Json>;
  readonly fields: Record<string, FieldGen>;
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages.

const toolInput = (rng: Rng): Json => rng.pick<Json>([{}, { city: 'Paris' }, 'not an object', 5, null, [], deep(rng, rng.range(10, 60)), { a: longString(rng) }, new Raw('{"a":1,"a":2}')]);

/** Signatures of `thinking` blocks: none of them Flint's, so each thought is dropped, never an error. */
const signatureValue = (rng: Rng): Json =>
  rng.pick<Json>(['', 'forged', 'AQ', 'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'x'.repeat(rng.pick([100, 100_000])), '====', '%%%', 5, null, {}, [], new Raw('"\\ud800"'), new BadBytes(badUtf8(rng))]);

function anthropicUserContent(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => 'hi',
    () => '',
    () => [],
    () => [{ type: 'text', text: 'hi' }],
    () => [{ type: 'text', text: 'hi', cache_control: rng.pick<Json>([{ type: 'ephemeral' }, { type: 'ephemeral', ttl: '1h' }, null, { type: 5 }, 'x', {}]) }],
    () => [{ type: 'text' }],
    () => [{ type: 'text', text: hostileValue(rng) }],
    () => [{ type: 'text', text: 'x', citations: hostileValue(rng) }],
    () => [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }],
    () => [{ type: 'image', source: { type: 'url', url: 'http://127.0.0.1:1/x.png' } }, { type: 'text', text: 'what is this?' }],
    () => [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }],
    () => [{ type: 'tool_result', tool_use_id: 'toolu_1', content: rng.pick<Json>(['ok', '', [{ type: 'text', text: 'ok' }], [{ type: 'image', source: {} }], [{ type: 'text' }], [null], 5, {}, null, longString(rng)]), is_error: rng.pick<Json>([true, 'yes', undefined]) }],
    () => [{ type: 'tool_result', tool_use_id: rng.pick<Json>([5, null, '', 'x'.repeat(10_000), undefined]) }],
    () => [{ type: 'tool_use', id: 'toolu_1', name: 'f', input: {} }],
    () => [{ type: 'thinking', thinking: 'x', signature: signatureValue(rng) }],
    () => [{ type: rng.pick<Json>(['', 'bogus', 'server_tool_use', 'web_search_tool_result', 'search_result', 'container_upload', 'TEXT', 5, null]) }],
    () => [{}],
    () => [null],
    () => ['hi'],
    () => Array.from({ length: rng.range(100, 2000) }, () => ({ type: 'text', text: 'x' })),
    () => new BadBytes(badUtf8(rng)),
    () => rng.pick(weirdStrings),
    () => hostileValue(rng),
  ])();
}

function anthropicAssistantContent(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => 'prefill',
    () => [{ type: 'text', text: 'ok' }, { type: 'tool_use', id: 'toolu_1', name: 'f', input: toolInput(rng) }],
    () => [{ type: 'tool_use', id: rng.pick<Json>([5, null, '', undefined]), name: 'f', input: {} }],
    () => [{ type: 'tool_use', id: 'toolu_1', name: rng.pick<Json>([5, null, '', 'f'.repeat(10_000), undefined]) }],
    () => [{ type: 'thinking', thinking: rng.pick<Json>(['hmm', '', 5, longString(rng)]), signature: signatureValue(rng) }, { type: 'text', text: 'ok' }],
    () => [{ type: 'thinking', thinking: 'hmm' }],
    () => [{ type: 'redacted_thinking', data: rng.pick<Json>(['AAAA', 5, '']) }],
    () => [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }],
    () => anthropicUserContent(rng),
  ])();
}

function anthropicMessages(rng: Rng): Json {
  const user = (): Json => ({ role: 'user', content: anthropicUserContent(rng) });
  const assistant = (): Json => ({ role: 'assistant', content: anthropicAssistantContent(rng) });
  return rng.pick<() => Json>([
    () => [],
    () => [user()],
    () => [{ role: 'user', content: 'x' }, assistant(), { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'ok' }] }],
    () => [{ role: 'user', content: 'x' }, assistant()],
    () => [assistant(), user()],
    () => [{ role: 'system', content: rng.pick<Json>(['be brief', [{ type: 'text', text: 'be brief' }], [{ type: 'image', source: {} }], [{ type: 'tool_use', id: 'a', name: 'f' }]]) }, { role: 'user', content: 'x' }],
    () => [{ role: rng.pick<Json>(['tool', 'developer', '', 'USER', 5, null]), content: 'x' }],
    () => [{ role: 'user' }],
    () => [{ content: 'x' }],
    () => [null],
    () => 'hi',
    () => ({ role: 'user', content: 'hi' }),
    () => Array.from({ length: rng.range(50, 400) }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` })),
    () => hostileValue(rng),
  ])();
}

function anthropicTools(rng: Rng): Json {
  const tool = (schema: Json): Json => ({ name: 'f', description: 'd', input_schema: schema });
  return rng.pick<() => Json>([
    () => [],
    () => [tool({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] })],
    () => [tool(hostileSchema(rng))],
    () => [tool(nestedItemsSchema(rng.range(20, 62)))],
    () => [{ name: 'f' }],
    () => [{ input_schema: { type: 'object' } }],
    () => [{ name: rng.pick<Json>(['', 5, null, 'f'.repeat(100_000), rng.pick(weirdStrings)]), input_schema: { type: 'object' } }],
    () => [{ type: rng.pick(['web_search_20250305', 'bash_20250124', 'text_editor_20250728', 'computer_20250124', 'code_execution_20250522', 'bogus']), name: 'server' }],
    () => [{ type: 'custom', name: 'f', input_schema: { type: 'object' } }],
    () => [{ type: 5, name: 'f' }],
    () => [tool({ type: 'object' }), tool({ type: 'object' })],
    () => [{ name: 'f', input_schema: rng.pick<Json>([5, 'x', null, [], true]) }],
    () => [{ name: 'f', input_schema: { type: 'object' }, cache_control: { type: 'ephemeral' } }],
    () => new Raw(`[${Array.from({ length: rng.pick([511, 512, 513, 2000]) }, (_, i) => JSON.stringify({ name: `f${i}`, input_schema: { type: 'object' } })).join(',')}]`),
    () => hostileValue(rng),
  ])();
}

function anthropicToolChoice(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => ({ type: 'auto' }),
    () => ({ type: 'any' }),
    () => ({ type: 'none' }),
    () => ({ type: 'tool', name: 'f' }),
    () => ({ type: 'tool', name: rng.pick<Json>(['missing', '', 5, null, undefined]) }),
    () => ({ type: rng.pick(['auto', 'any', 'tool']), name: 'f', disable_parallel_tool_use: rng.pick<Json>([true, false, 'yes', 1, null]) }),
    () => ({ type: rng.pick<Json>(['required', 'function', '', 'AUTO', 5, null]) }),
    () => rng.pick<Json>(['auto', 'any', 'none', 'required']),
    () => ({}),
    () => hostileValue(rng),
  ])();
}

const anthropicFields: Record<string, FieldGen> = {
  model: (rng, model) => rng.pick<Json>(['nope', '', 5, null, [], {}, `${model}:latest`, model.toUpperCase(), `${model} `, 'x'.repeat(100_000), 'claude-sonnet-4-5', rng.pick(weirdStrings)]),
  max_tokens: maxTokensValue,
  messages: anthropicMessages,
  system: (rng) =>
    rng.pick<() => Json>([
      () => '',
      () => [],
      () => [{ type: 'text', text: 'Be brief.' }, { type: 'text', text: 'x-anthropic-billing-header: cc_version=1; cch=1;' }],
      () => [{ type: 'text', text: 'x-anthropic-billing-header: cc_version=1;' }],
      () => [{ type: 'text', text: 'Be brief.', cache_control: rng.pick<Json>([{ type: 'ephemeral' }, { type: 'ephemeral', ttl: 5 }, 'x']) }],
      () => [{ type: 'image', source: {} }],
      () => [{ type: 'text' }],
      () => [{ text: 'no type' }],
      () => Array.from({ length: rng.pick([1024, 1025]) }, () => ({ type: 'text', text: 's' })),
      () => longString(rng),
      () => new BadBytes(badUtf8(rng)),
      () => rng.pick(weirdStrings),
      () => hostileValue(rng),
    ])(),
  tools: anthropicTools,
  tool_choice: anthropicToolChoice,
  stop_sequences: (rng) => rng.pick<Json>([[], [''], ['\n'], [5], 'stop', Array.from({ length: 17 }, (_, i) => `s${i}`), ['x'.repeat(100_000)], [new BadBytes(badUtf8(rng))], [new Raw('"\\ud800"')], null]),
  temperature: numberParam,
  top_p: numberParam,
  top_k: (rng) => rng.pick<Json>([0, 1, -1, 1.5, 1e300, 2 ** 31, 2 ** 53, '5', null, new Raw('1e400'), new Raw('-0')]),
  thinking: (rng) =>
    rng.pick<Json>([
      { type: 'enabled', budget_tokens: rng.pick<Json>([1024, 0, 1, -1, 1.5, 1e300, new Raw('1e400'), '1024', null]) },
      { type: 'enabled' },
      { type: 'disabled' },
      { type: 'adaptive' },
      { type: rng.pick<Json>(['', 5, null, 'ENABLED']) },
      { budget_tokens: 1024 },
      'enabled',
      true,
      deep(rng, 50),
    ]),
  metadata: (rng) => rng.pick<Json>([{ user_id: 'u-1' }, { user_id: null }, { user_id: 5 }, { user_id: 'x'.repeat(200_000) }, { user_id: rng.pick(weirdStrings) }, { other: 1 }, {}, 'x', 5, null, []]),
  stream: streamValue,
  service_tier: (rng) => rng.pick<Json>(['auto', 'standard_only', 'priority', 5]),
  container: (rng) => rng.pick<Json>(['cntr_x', null, 5, {}]),
  mcp_servers: (rng) => rng.pick<Json>([[{ type: 'url', url: 'http://127.0.0.1:1', name: 'x' }], 5, 'x']),
  ['__proto__']: (rng) => rng.pick<Json>([{ max_tokens: 100_000 }, { stream: true }, null, 5, []]),
};

const anthropic: RouteSpec = {
  protocol: 'anthropic',
  name: 'messages',
  path: (rng) => (rng.chance(0.15) ? '/v1/messages/count_tokens' : '/v1/messages'),
  base(rng, model, path) {
    const content = rng.chance(0.5) ? rng.pick(['hi', 'Write code.', 'ok']) : [{ type: 'text', text: rng.pick(['hi', 'Write code.', 'ok']) }];
    const body: Record<string, Json> = { model, messages: [{ role: 'user', content }] };
    if (path === '/v1/messages') {
      body.max_tokens = rng.range(1, 4);
      if (rng.chance(0.4)) body.stream = true;
    }
    if (rng.chance(0.2)) body.system = rng.chance(0.5) ? 'Be brief.' : [{ type: 'text', text: 'Be brief.' }];
    return body;
  },
  fields: anthropicFields,
};

// ---------------------------------------------------------------------------------------------
// Ollama.

/** A wrong value for one of Ollama's `options`. */
function optionValue(rng: Rng, name: string): Json {
  switch (name) {
    case 'num_predict':
      return rng.weighted<Json>([
        [8, rng.pick<Json>([0, -3, 1.5, '4', true, null, [], new Raw('1e400'), new Raw('-1e400'), new Raw('NaN'), new Raw('4.0'), 1, 2, 3])],
        [1, rng.pick<Json>([-1, -2, 2 ** 31, 1e300, new Raw('123456789012345678901234567890')])],
      ]);
    case 'num_ctx':
      return rng.pick<Json>([1, 0, -1, 8, 1e9, 2 ** 31, 2 ** 53, 1.5, '4096', null, new Raw('1e400')]);
    case 'seed':
      return seedValue(rng);
    case 'stop':
      return rng.pick<Json>([[], [''], ['\n'], 'stop', [5], Array.from({ length: 17 }, (_, i) => `s${i}`), ['x'.repeat(100_000)], [new BadBytes(badUtf8(rng))], null]);
    case 'top_k':
      return rng.pick<Json>([0, -1, 1.5, 1e300, 2 ** 31, '5', null]);
    default:
      return numberParam(rng);
  }
}

const optionNames = ['num_predict', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'stop', 'num_ctx', 'repeat_penalty', 'presence_penalty', 'frequency_penalty', 'mirostat', 'num_gpu', 'num_thread', 'bogus'];

/** Options with one to three entries wrong; `num_predict` stays small unless it is the one changed. */
function ollamaOptions(rng: Rng): Json {
  return rng.weighted<() => Json>([
    [
      10,
      () => {
        const entries: Array<[string, Json]> = [['num_predict', rng.range(1, 4)]];
        for (let i = rng.range(1, 3); i > 0; i--) {
          const name = rng.pick(optionNames);
          const at = entries.findIndex(([k]) => k === name);
          const value = optionValue(rng, name);
          if (at === -1) entries.push([name, value]);
          else entries[at] = [name, value];
        }
        return new Entries(entries);
      },
    ],
    [1, () => rng.pick<Json>([null, {}, [], 'x', 5, { num_predict: 1, options: { num_predict: 1e9 } }])],
    [1, () => ({ num_predict: 1, mirostat: deep(rng, depthFor(rng)) })],
    [1, () => hostileValue(rng)],
  ])();
}

function ollamaFormat(rng: Rng): Json {
  return rng.pick<() => Json>([
    () => 'json',
    () => '',
    () => null,
    () => rng.pick<Json>(['xml', 'JSON', 'json_schema', 5, true, []]),
    () => ({ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }),
    () => hostileSchema(rng),
    () => nestedItemsSchema(rng.range(20, 62)),
  ])();
}

function ollamaTools(rng: Rng): Json {
  const fn = (parameters: Json): Json => ({ type: 'function', function: { name: 'f', description: 'd', parameters } });
  return rng.pick<() => Json>([
    () => [],
    () => null,
    () => [fn({ type: 'object', properties: { city: { type: 'string' } } })],
    () => [fn(hostileSchema(rng))],
    () => [{ type: 'function' }],
    () => [{ type: 'function', function: { name: rng.pick<Json>(['', 5, null, 'f'.repeat(100_000)]) } }],
    () => [{ name: 'f', parameters: {} }],
    () => [null, 5, 'x'],
    () => [{ type: rng.pick(['web_search', 'bogus', '']) }],
    () => new Raw(`[${Array.from({ length: rng.pick([512, 513]) }, (_, i) => JSON.stringify({ type: 'function', function: { name: `f${i}` } })).join(',')}]`),
    () => hostileValue(rng),
  ])();
}

function ollamaMessages(rng: Rng): Json {
  const call = (): Json => ({ function: { name: rng.pick<Json>(['f', '', 5]), arguments: rng.pick<Json>([{ city: 'Paris' }, '{"city":"Paris"}', '{bad', '', null, 5, [], deep(rng, 40)]) } });
  return rng.pick<() => Json>([
    () => [],
    () => [{ role: 'user', content: 'hi' }],
    () => [{ role: 'user', content: 'hi', images: rng.pick<Json>([['iVBORw0KGgo='], [], null, 'x', [5], Array.from({ length: 65 }, () => 'AA')]) }],
    () => [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', tool_calls: [call()] }, { role: 'tool', content: 'ok', tool_name: rng.pick<Json>(['f', 'other', 5, undefined]) }],
    () => [{ role: 'tool', content: 'orphan' }],
    () => [{ role: 'assistant', tool_calls: rng.pick<Json>(['x', [null], [{}], [{ function: {} }], Array.from({ length: 129 }, () => ({ function: { name: 'f' } }))]) }],
    () => [{ role: 'assistant', content: 'x', thinking: rng.pick<Json>(['hmm', 5, longString(rng)]) }, { role: 'user', content: 'y' }],
    () => [{ role: rng.pick<Json>(['developer', 'function', '', 'USER', 5, null]), content: 'x' }],
    () => [{ role: 'user', content: rng.pick<Json>([5, null, [], { text: 'x' }, [{ type: 'text', text: 'x' }]]) }],
    () => [{ role: 'user', content: new BadBytes(badUtf8(rng)) }],
    () => [{ role: 'user', content: rng.pick(weirdStrings) }],
    () => [{ role: 'system', content: longString(rng) }, { role: 'user', content: 'x' }],
    () => [{ role: 'user' }],
    () => [null],
    () => 'hi',
    () => Array.from({ length: rng.range(50, 400) }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` })),
    () => hostileValue(rng),
  ])();
}

const ollamaCommon: Record<string, FieldGen> = {
  model: (rng, model) => rng.pick<Json>(['nope', '', 5, null, [], `${model}:latest`, `${model}:7b`, `${model}:`, `library/${model}`, model.toUpperCase(), 'x'.repeat(100_000), rng.pick(weirdStrings)]),
  options: ollamaOptions,
  format: ollamaFormat,
  stream: streamValue,
  keep_alive: (rng) => rng.pick<Json>(['5m', '0', 0, -1, '', '-1s', 'x'.repeat(65), 'x'.repeat(64), 1e300, new Raw('1e400'), {}, [], true, null]),
  think: (rng) => rng.pick<Json>([true, false, 'high', 'low', '', 'x'.repeat(17), 5, {}, null]),
  ['__proto__']: (rng) => rng.pick<Json>([{ options: { num_predict: 100_000 } }, { stream: true }, null]),
};

const ollamaChat: RouteSpec = {
  protocol: 'ollama',
  name: 'ollama chat',
  path: () => '/api/chat',
  base: (rng, model) => ({ model, messages: [{ role: 'user', content: rng.pick(['hi', 'Write code.', 'ok']) }], options: { num_predict: rng.range(1, 4) }, ...(rng.chance(0.5) ? { stream: false } : rng.chance(0.3) ? { stream: true } : {}) }),
  fields: { ...ollamaCommon, messages: ollamaMessages, tools: ollamaTools },
};

const ollamaGenerate: RouteSpec = {
  protocol: 'ollama',
  name: 'ollama generate',
  path: () => '/api/generate',
  base(rng, model) {
    const body: Record<string, Json> = { model, prompt: rng.pick(['def f(', 'hi', '# x']), options: { num_predict: rng.range(1, 4) } };
    if (rng.chance(0.5)) body.stream = false;
    if (rng.chance(0.25)) body.suffix = rng.pick(['\n', '    return x\n']);
    if (rng.chance(0.15)) body.raw = true;
    if (rng.chance(0.15)) body.system = 'Be brief.';
    return body;
  },
  fields: {
    ...ollamaCommon,
    prompt: (rng) => rng.pick<Json>(['', ' ', 5, null, [], ['a'], longString(rng), new BadBytes(badUtf8(rng)), new Raw('"\\ud800"'), rng.pick(weirdStrings)]),
    suffix: (rng) => rng.pick<Json>(['', 'x', 5, null, [], longString(rng), new BadBytes(badUtf8(rng)), rng.pick(weirdStrings)]),
    system: (rng) => rng.pick<Json>(['', 5, null, [{ type: 'text', text: 'x' }], longString(rng), new BadBytes(badUtf8(rng))]),
    raw: (rng) => rng.pick<Json>([true, false, 'true', 1, null, {}]),
    images: (rng) => rng.pick<Json>([['iVBORw0KGgo='], [], null, 'x', [5], Array.from({ length: 65 }, () => 'AA')]),
    template: (rng) => rng.pick<Json>(['{{ .Prompt }}', '{{', 5]),
    context: (rng) => rng.pick<Json>([[1, 2, 3], [-1], [2 ** 40], 'x', longArray(rng)]),
  },
};

// ---------------------------------------------------------------------------------------------
// llama.cpp /infill.

const infillFields: Record<string, FieldGen> = {
  model: (rng, model) => rng.pick<Json>([null, 'nope', '', 5, [], model.toUpperCase(), 'x'.repeat(100_000)]),
  input_prefix: (rng) => rng.pick<Json>(['', 5, null, [], longString(rng), new BadBytes(badUtf8(rng)), new Raw('"\\ud800"'), rng.pick(weirdStrings)]),
  input_suffix: (rng) => rng.pick<Json>(['', 5, null, {}, longString(rng), new BadBytes(badUtf8(rng)), rng.pick(weirdStrings)]),
  input_extra: (rng) =>
    rng.pick<() => Json>([
      () => [],
      () => [{ filename: 'a.py', text: 'def a(): pass\n' }, { filename: 'b.py', text: 'import a\n' }],
      () => [{ text: 'no filename' }],
      () => [{ filename: 'a.py' }],
      () => [{ filename: rng.pick<Json>([5, null, '', '../../etc/passwd', 'x'.repeat(100_000), '<|file_sep|>']), text: 'x' }],
      () => [{ filename: 'a.py', text: rng.pick<Json>([5, null, [], longString(rng), new BadBytes(badUtf8(rng)), '<|fim_prefix|><|fim_suffix|><|fim_middle|>']) }],
      () => [null, 5, 'x'],
      () => ({ filename: 'a.py', text: 'not in an array' }),
      () => new Raw(`[${Array.from({ length: rng.pick([100, 4096, 4097]) }, (_, i) => JSON.stringify({ filename: `f${i}.py`, text: `x = ${i}\n` })).join(',')}]`),
      () => hostileValue(rng),
    ])(),
  prompt: (rng) => rng.pick<Json>(['', 'x', 5, null, ['a'], longString(rng), new BadBytes(badUtf8(rng))]),
  n_predict: (rng) =>
    rng.weighted<Json>([
      [8, rng.pick<Json>([0, -2, 1.5, '4', true, null, [], {}, new Raw('1e400'), new Raw('-1e400'), new Raw('NaN'), new Raw('4.0'), new Raw('-0'), 1, 2, 3])],
      [1, rng.pick<Json>([-1, 2 ** 31, 2 ** 53, 1e300])],
    ]),
  temperature: numberParam,
  top_k: (rng) => rng.pick<Json>([0, -1, 1.5, 1e300, 2 ** 31, '5', null]),
  top_p: numberParam,
  min_p: numberParam,
  seed: seedValue,
  stop: (rng) => rng.pick<Json>([[], [''], ['\n'], 'stop', [5], Array.from({ length: 17 }, (_, i) => `s${i}`), ['x'.repeat(100_000)], null]),
  stream: streamValue,
  cache_prompt: (rng) => rng.pick<Json>([true, false, 'yes', 5, null, {}]),
  t_max_predict_ms: (rng) => rng.pick<Json>([0, 1, 10, -1, 1.5, 2 ** 31, 2 ** 53, 1e300, new Raw('1e400'), '500', null]),
  t_max_prompt_ms: (rng) => rng.pick<Json>([0, -1, 'x', 1e300]),
  id_slot: (rng) => rng.pick<Json>([-1, 0, 1, 5, 2 ** 31, 'x', null, 1.5]),
  samplers: (rng) => rng.pick<Json>([['top_k', 'temperature'], [], ['bogus'], 'kt', 5, [5], deep(rng, 50), Array.from({ length: 1000 }, () => 'top_k')]),
  response_fields: (rng) =>
    rng.pick<Json>([
      ['content'],
      ['content', 'timings/prompt_n', 'generation_settings/n_ctx'],
      [],
      ['a/b/c/d/e'],
      ['__proto__', 'constructor', 'content/length', 'toString'],
      ['/', '//', ''],
      ['x'.repeat(100_000)],
      ['/'.repeat(10_000)],
      Array.from({ length: 65 }, () => 'content'),
      [5],
      'content',
      null,
    ]),
  n_indent: (rng) => rng.pick<Json>([0, 4, -1, 'x', 1e300]),
  n_cmpl: (rng) => rng.pick<Json>([1, 2, 0, -1, 'x']),
  lora: (rng) => rng.pick<Json>([[], [{ id: 0, scale: 1 }], 5]),
};

const infill: RouteSpec = {
  protocol: 'infill',
  name: 'infill',
  path: () => '/infill',
  base(rng) {
    const body: Record<string, Json> = { input_prefix: rng.pick(['def f(', 'x = ', '# a\n']), input_suffix: rng.pick(['\n', '    return x\n', '']), n_predict: rng.range(1, 4) };
    if (rng.chance(0.4)) body.stream = true;
    if (rng.chance(0.3)) body.input_extra = [{ filename: 'a.py', text: 'def a():\n    pass\n' }];
    if (rng.chance(0.2)) body.cache_prompt = true;
    return body;
  },
  fields: infillFields,
};

// ---------------------------------------------------------------------------------------------
// Cases.

/** A hostile schema the request forces: Anthropic tools with tool_choice any or tool, Ollama's `format` or tools. */
function grammarFields(rng: Rng, spec: RouteSpec): { extra: Record<string, Json>; what: string } {
  const schema = rng.chance(0.15) ? nestedItemsSchema(rng.range(20, 62)) : hostileSchema(rng);
  if (spec === anthropic) {
    const choice = rng.pick<Json>([{ type: 'any' }, { type: 'tool', name: 'f' }, { type: 'auto' }, { type: 'any', disable_parallel_tool_use: true }]);
    return { extra: { tools: [{ name: 'f', description: 'd', input_schema: schema }], tool_choice: choice }, what: 'input_schema' };
  }
  if (spec === ollamaChat && rng.chance(0.4)) return { extra: { tools: [{ type: 'function', function: { name: 'f', parameters: schema } }] }, what: 'tool parameters' };
  if (spec === infill) return { extra: { input_extra: [{ filename: 'schema.json', text: toJsonText(schema).text.slice(0, 2000) }] }, what: 'none (schema as extra context)' };
  return { extra: { format: schema }, what: 'format' };
}

/** Replaces or adds 1 to 3 fields with hostile values. */
function mutate(rng: Rng, spec: RouteSpec, body: Record<string, Json>, model: string): { body: Entries; changed: string[] } {
  const names = Object.keys(spec.fields);
  const changed: string[] = [];
  const entries: Array<[string, Json]> = Object.entries(body);
  for (let i = rng.range(1, 3); i > 0; i--) {
    const name = rng.pick(names);
    const value = spec.fields[name](rng, model);
    changed.push(`${name}=${describe(value)}`);
    const at = entries.findIndex(([k]) => k === name);
    if (at === -1) entries.push([name, value]);
    else entries[at] = [name, value];
  }
  return { body: new Entries(entries), changed };
}

/** Headers of a JSON request, plus the ones each protocol's clients send. */
function headersFor(rng: Rng, spec: RouteSpec): Record<string, string> {
  const headers = jsonHeaders(rng);
  if (spec.protocol === 'anthropic') {
    if (rng.chance(0.5)) headers['anthropic-version'] = rng.pick(['2023-06-01', '', 'bogus']);
    if (rng.chance(0.2)) headers['anthropic-beta'] = rng.pick(['interleaved-thinking-2025-05-14', 'x'.repeat(2000), ',,,']);
    if (rng.chance(0.1)) headers['x-api-key'] = rng.pick(['sk-ant-x', '', ' ', 'x'.repeat(4000)]);
  }
  return headers;
}

/** The field that carries the prompt text, where invalid UTF-8 goes. */
function textField(spec: RouteSpec): { field: string; value: (bad: BadBytes) => Json } {
  if (spec === anthropic) return { field: 'messages', value: (bad) => [{ role: 'user', content: bad }] };
  if (spec === ollamaChat) return { field: 'messages', value: (bad) => [{ role: 'user', content: bad }] };
  if (spec === ollamaGenerate) return { field: 'prompt', value: (bad) => bad };
  return { field: 'input_prefix', value: (bad) => bad };
}

const jsonType = (isJson: boolean): Record<string, string> => (isJson ? { 'content-type': 'application/json' } : {});

/** Off the generation routes: Ollama's other routes, wrong methods and odd paths in each protocol's tree. */
function otherCase(rng: Rng, model: string): ProtocolCase {
  const query = rng.pick(['', '?x=%ff', '?verbose=true', `?${'a=1&'.repeat(1000)}`, '?model=nope']);
  return rng.pick<() => ProtocolCase>([
    () => ({ protocol: 'ollama', method: 'GET', path: rng.pick(['/api/tags', '/api/ps', '/api/version']) + query, headers: {}, label: 'ollama info route' }),
    () => {
      const body = rng.pick<Json>([{ model }, { name: model }, { model: `${model}:latest` }, { model: 'nope' }, { model: 5 }, {}, { name: null }, { model, verbose: true }, { model: 'x'.repeat(100_000) }, null, [], 'x']);
      return { protocol: 'ollama', method: 'POST', path: '/api/show', headers: jsonType(rng.chance(0.5)), body: toBody(body), label: `ollama show ${describe(body)}` };
    },
    () => {
      const body = rng.pick<Json>([{ model, input: 'x' }, { model, input: ['a', 'b'] }, { model, prompt: 'x' }, {}, { model: 'nope', input: 'x' }]);
      const path = rng.pick(['/api/embed', '/api/embeddings']);
      // Whatever the body, a 400 that says embeddings are not supported.
      return { protocol: 'ollama', method: 'POST', path, headers: { 'content-type': 'application/json' }, body: toBody(body), expectStatus: 400, label: `ollama ${path} ${describe(body)}` };
    },
    () => {
      const path = rng.pick(['/api/pull', '/api/push', '/api/create', '/api/copy', '/api/delete', '/api/blobs/sha256:x', '/api/', '/api', '/api/chat/', '/API/CHAT']);
      return { protocol: path.startsWith('/api/') ? 'ollama' : 'openai', method: 'POST', path, headers: { 'content-type': 'application/json' }, body: toBody({ model }), label: `ollama route Flint does not serve: ${path}` };
    },
    () => {
      const path = rng.pick(['/api/chat', '/api/generate', '/api/show', '/api/tags', '/api/embed']);
      return { protocol: 'ollama', method: rng.pick(['PUT', 'PATCH', 'DELETE', 'OPTIONS', rng.pick(['GET', 'POST'])]), path, headers: {}, label: `ollama ${path} wrong method` };
    },
    () => {
      const path = rng.pick(['/v1/messages', '/v1/messages/count_tokens', '/v1/messages/batches', '/v1/messages/x/y', '/v1/messages/', '/v1/messages?beta=true', '/v1/messages/count_tokens?x=%zz']);
      const method = rng.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'POST']);
      const body = method === 'POST' ? toBody({ model, max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }) : undefined;
      return { protocol: 'anthropic', method, path, headers: jsonType(body !== undefined), body, label: `anthropic ${method} ${path}` };
    },
    () => {
      // /INFILL is no route: the OpenAI envelope, as /infill's.
      const path = rng.pick(['/infill', '/infill/', '/infill?x=%ff', '/INFILL']);
      const method = rng.pick(['GET', 'PUT', 'DELETE', 'POST']);
      const body = method === 'POST' ? toBody({ input_prefix: 'x', n_predict: 1 }) : undefined;
      return { protocol: 'infill', method, path, headers: jsonType(body !== undefined), body, label: `infill ${method} ${path}` };
    },
  ])();
}

/** One hostile request to the Anthropic, Ollama or /infill routes. */
export function protocolCase(rng: Rng, model: string): ProtocolCase {
  const spec = rng.weighted<RouteSpec>([
    [40, anthropic],
    [22, ollamaChat],
    [16, ollamaGenerate],
    [22, infill],
  ]);
  const path = spec.path(rng);
  const { protocol } = spec;
  const base = () => spec.base(rng, model, path);
  const kind = rng.weighted<string>([
    [45, 'mutate'],
    [6, 'truncated'],
    [3, 'random-bytes'],
    [5, 'invalid-utf8'],
    [6, 'deep'],
    [3, 'long-array'],
    [6, 'content-type'],
    [3, 'empty'],
    [4, 'duplicate-keys'],
    [3, 'odd-keys'],
    [2, 'non-object'],
    [6, 'grammar'],
    [14, 'other-route'],
  ]);
  const name = `${spec.name}${path.endsWith('count_tokens') ? ' count_tokens' : ''}`;
  switch (kind) {
    case 'mutate': {
      const { body, changed } = mutate(rng, spec, base(), model);
      return { protocol, method: 'POST', path, headers: headersFor(rng, spec), body: toBody(body), label: `${name} mutate[${changed.join('; ')}]` };
    }
    case 'truncated': {
      const full = toBody(rng.chance(0.5) ? base() : mutate(rng, spec, base(), model).body);
      const cut = rng.int(full.length);
      return { protocol, method: 'POST', path, headers: { 'content-type': 'application/json' }, body: full.subarray(0, cut), label: `${name} truncated at ${cut}/${full.length}` };
    }
    case 'random-bytes': {
      const junk = randomBytesBody(rng);
      return { protocol, method: 'POST', path, headers: { 'content-type': junk.contentType }, body: junk.body, label: `${name} random bytes (${junk.randomBytes})` };
    }
    case 'invalid-utf8': {
      const bad = new BadBytes(badUtf8(rng));
      const { field, value } = textField(spec);
      return { protocol, method: 'POST', path, headers: headersFor(rng, spec), body: toBody({ ...base(), [field]: value(bad) }), label: `${name} invalid utf-8 in ${field}: ${bad.bytes.toString('hex')}` };
    }
    case 'deep': {
      const depth = depthFor(rng);
      const field = rng.pick(Object.keys(spec.fields));
      return { protocol, method: 'POST', path, headers: headersFor(rng, spec), body: toBody({ ...base(), [field]: deep(rng, depth) }), label: `${name} deep ${field} (${depth})` };
    }
    case 'long-array': {
      const field = rng.pick(Object.keys(spec.fields));
      const value = longArray(rng);
      return { protocol, method: 'POST', path, headers: headersFor(rng, spec), body: toBody({ ...base(), [field]: value }), label: `${name} long array in ${field} (${value.text.length}ch)` };
    }
    case 'content-type': {
      const ct = rng.pick(contentTypes);
      const headers: Record<string, string> = ct === '' && rng.chance(0.5) ? {} : { 'content-type': ct };
      const isForm = rng.chance(0.2);
      const body = isForm ? Buffer.from('model=x&prompt=hi') : toBody(base());
      // Ollama's routes read any body as JSON (curl -d sends form encoding): a valid one is answered.
      const expectStatus = protocol === 'ollama' && !isForm ? 200 : undefined;
      return { protocol, method: 'POST', path, headers, body, expectStatus, label: `${name} content-type ${JSON.stringify(headers['content-type'] ?? null)}${isForm ? ' form body' : ''}` };
    }
    case 'empty': {
      const headers = rng.pick<Record<string, string>>([{ 'content-type': 'application/json' }, {}, { 'content-type': 'text/plain' }]);
      const body = rng.pick([Buffer.alloc(0), Buffer.from(' '), Buffer.from('\n\r\n'), Buffer.from('\ufeff'), Buffer.from('null'), Buffer.from('""')]);
      return { protocol, method: 'POST', path, headers, body, label: `${name} empty-ish body ${JSON.stringify(body.toString())} ${JSON.stringify(headers)}` };
    }
    case 'duplicate-keys': {
      const body = base();
      const key = rng.chance(0.5) ? rng.pick(Object.keys(body)) : rng.pick(Object.keys(spec.fields));
      const entries: Array<[string, Json]> = Object.entries(body);
      const extra = spec.fields[key]?.(rng, model) ?? hostileValue(rng);
      entries.splice(rng.int(entries.length + 1), 0, [key, extra]);
      if (rng.chance(0.5)) entries.push([key, body[key] ?? 1]);
      return { protocol, method: 'POST', path, headers: headersFor(rng, spec), body: toBody(new Entries(entries)), label: `${name} duplicate key ${key}=${describe(extra)}` };
    }
    case 'odd-keys': {
      const key = rng.pick(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', '\u0000', 'stream\u0000', 'ｍａｘ_tokens', 'MAX_TOKENS', ' model', 'options ', '😀', 'k'.repeat(100_000)]);
      const raw = rng.chance(0.2) ? new Raw(rng.pick(['"\\ud800"', '"\\u0000"', '"a\\udc00b"'])) : key;
      const value = rng.chance(0.5) ? hostileValue(rng) : rng.pick<Json>([{ max_tokens: 100_000 }, { num_predict: 100_000 }, 1e9, { stream: true }, null]);
      const entries: Array<[string | Raw, Json]> = Object.entries(base());
      entries.splice(rng.int(entries.length + 1), 0, [raw, value]);
      return { protocol, method: 'POST', path, headers: headersFor(rng, spec), body: toBody(new Entries(entries)), label: `${name} odd key ${describe(raw)}=${describe(value)}` };
    }
    case 'grammar': {
      // Valid apart from the schema, so it reaches the grammar compiler in the worker (/infill has none: a plain mutation).
      const { extra, what } = grammarFields(rng, spec);
      const body = { ...base(), ...extra };
      return { protocol, method: 'POST', path, headers: headersFor(rng, spec), body: toBody(body), label: `${name} grammar ${what}: ${describe(body).slice(0, 400)}` };
    }
    case 'non-object': {
      const text = rng.pick(['[]', '[{}]', '5', '"x"', 'true', 'null', '-0', '1e400', '{}', '{"a":1}', `[${toJsonText(base()).text}]`]);
      return { protocol, method: 'POST', path, headers: { 'content-type': 'application/json' }, body: Buffer.from(text), label: `${name} non-object ${text.slice(0, 40)}` };
    }
    default:
      return otherCase(rng, model);
  }
}

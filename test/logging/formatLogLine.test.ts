import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLogLine } from '../../src/logging/formatLogLine.js';

test('a finished request is one short line: route, status, tokens with the cached share, first token and total time', () => {
  const line = formatLogLine({ msg: 'request finished', level: 30, reqId: 'r1', api: 'chat', route: '/v1/chat/completions', status: 200, outcome: 'ok', finishReason: 'stop', promptTokens: 812, cachedTokens: 790, completionTokens: 16, ttftMs: 41.2, durationMs: 1234.5 });
  assert.equal(line, '/v1/chat/completions 200  812 prompt (790 cached) -> 16 tokens  first token 41 ms, total 1.23 s');
  const cancelled = formatLogLine({ msg: 'request finished', route: '/v1/responses', status: 200, outcome: 'cancelled', finishReason: 'length', promptTokens: 5, cachedTokens: 0, completionTokens: 3, durationMs: 20 });
  assert.equal(cancelled, '/v1/responses 200 cancelled  5 prompt -> 3 tokens  total 20 ms  length');
});

test('the start-up summary names the model, context, workers x slots, threads, the URL and where metrics are', () => {
  const text = formatLogLine({ msg: 'listening', url: 'http://127.0.0.1:8080', model: 'qwen2.5-coder-7b-instruct', architecture: 'qwen2', modelFile: 'models/q.gguf', contextSize: 8192, trainContextSize: 32768, workers: 1, slots: 4, threads: 7, batchThreads: 8, gpu: 'cuda', metricsUrl: 'http://127.0.0.1:8080/metrics', metricsToken: true });
  assert.equal(
    text,
    [
      'Flint listening on http://127.0.0.1:8080',
      '  model    qwen2.5-coder-7b-instruct (qwen2)  models/q.gguf',
      '  context  8192 tokens per slot, trained for 32768',
      '  engine   1 worker x 4 slots, threads 7 decode / 8 prompt, gpu cuda',
      '  metrics  http://127.0.0.1:8080/metrics (bearer token required)',
      '  clients  OpenAI base URL http://127.0.0.1:8080/v1, Anthropic http://127.0.0.1:8080, Ollama http://127.0.0.1:8080, WebSocket ws://127.0.0.1:8080/v1/responses',
    ].join('\n'),
  );
});

test('other lines: the message and their scalar fields; request ids and objects stay in JSON logs', () => {
  assert.equal(formatLogLine({ msg: 'worker up', level: 30, pid: 1, hostname: 'h', workerId: 0, threads: 1, config: { a: 1 }, reqId: 'x' }), 'worker up workerId=0 threads=1');
  assert.equal(formatLogLine({ msg: 'worker down; restarting', level: 40, reason: 'exit code 1' }), 'worker down; restarting reason="exit code 1"');
  assert.match(formatLogLine({ msg: 'shutdown failed', level: 50, err: { message: 'x', stack: 'Error: x\n    at y' } }), /^shutdown failed \nError: x\n {4}at y$/);
});

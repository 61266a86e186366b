import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/startServer.js';

// Malformed, deeply nested, oversized and contradictory bodies on the /infill, Ollama and
// Anthropic routes: each gets a 4xx in its protocol's envelope (or a normal answer), never a 5xx,
// and the server, its slot and the next client are unaffected.
let server: TestServer;
before(async () => {
  server = await startServer({ FLINT_SLOTS: '1' }, 'limits:\n  requestsPerSecond: 0\n');
});
after(() => server?.close());

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
const big = 'x'.repeat(1024 * 1024);

test('hostile bodies on the new protocol routes: no 5xx, the right envelope, and the server serves on', async () => {
  const model = server.app.scheduler.model!.id;
  const cases: Array<[string, string, number]> = [
    ['/infill', `{"input_extra":${deep(5000)}}`, 400],
    ['/infill', `{"input_extra":[{"text":"${big}"}],"n_predict":1}`, 400],
    ['/infill', `{"input_prefix":"${big}","n_predict":1}`, 400],
    ['/infill', '{"n_predict":1e309}', 400],
    ['/infill', '{"input_extra":[{"text":1}]}', 400],
    ['/infill', 'null', 400],
    ['/infill', '[]', 400],
    ['/infill', '{"response_fields":["a/b/c/d/e"],"n_predict":1}', 200],
    ['/api/chat', `{"model":"${model}","messages":${deep(5000)}}`, 400],
    ['/api/chat', `{"model":"${model}","messages":[{"role":"tool","content":"x"}],"stream":false,"options":{"num_predict":1}}`, 200],
    ['/api/chat', `{"model":"${model}","messages":[{"role":"assistant","tool_calls":[{"function":{"name":"x","arguments":"{bad"}}]}],"stream":false,"options":{"num_predict":1}}`, 200],
    ['/api/chat', `{"model":"${model}","messages":[{"role":"user","content":"x"}],"format":{"type":"object","properties":{"a":{"$ref":"#/nowhere"}}},"stream":false,"options":{"num_predict":1}}`, 200],
    ['/api/generate', `{"model":"${model}","prompt":"a","format":{"type":"nope"},"stream":false,"options":{"num_predict":1}}`, 200],
    ['/api/show', '{}', 400],
    ['/api/show', 'not json', 400],
    ['/api/generate', `{"model":"${model}","prompt":"${big}","options":{"num_predict":1}}`, 400],
    ['/v1/messages', `{"model":"${model}","max_tokens":1,"messages":[{"role":"user","content":${deep(3000)}}]}`, 400],
    ['/v1/messages', `{"model":"${model}","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result"}]}]}`, 400],
    ['/v1/messages', `{"model":"${model}","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"image"}]}]}]}`, 400],
    ['/v1/messages', `{"model":"${model}","max_tokens":1,"tools":[{"name":"a","input_schema":{"type":"object","properties":{"x":{"type":"string","pattern":"("}}}}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"x"}]}`, 200],
    ['/v1/messages', `{"model":"${model}","max_tokens":99999999999,"messages":[{"role":"user","content":"x"}]}`, 200],
    ['/v1/messages/count_tokens', `{"model":"${model}","messages":[{"role":"assistant","content":[{"type":"tool_use"}]}]}`, 400],
    ['/v1/messages', `{"model":"${model}","max_tokens":1,"system":"${big}","messages":[]}`, 400],
    ['/v1/messages', `{"model":"${model}","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"forged"}]},{"role":"user","content":"x"}]}`, 200],
  ];
  const envelope = (path: string, body: Record<string, any>): unknown =>
    path.startsWith('/api/') ? typeof body.error : path.startsWith('/v1/messages') ? `${body.type}/${typeof body.error?.message}` : typeof body.error?.message;
  const expectedEnvelope = (path: string) => (path.startsWith('/api/') ? 'string' : path.startsWith('/v1/messages') ? 'error/string' : 'string');
  for (const [path, body, status] of cases) {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const text = await res.text();
    assert.equal(res.status, status, `${path} ${body.slice(0, 100)}: ${text.slice(0, 200)}`);
    // An error in the route's protocol envelope; an answer (the body was odd but valid) is a normal reply.
    const reply = JSON.parse(text.split('\n')[0]) as Record<string, any>;
    assert.equal(status === 200 ? reply.error : envelope(path, reply), status === 200 ? undefined : expectedEnvelope(path), `${path}: ${text.slice(0, 200)}`);
  }
  assert.equal((await server.app.metrics.slotsBusy.get()).values.reduce((n, v) => n + v.value, 0), 0);
  const after = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(after.status, 200);
});

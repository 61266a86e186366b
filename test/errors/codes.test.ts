import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorCodes, type ErrorCode } from '../../src/errors/codes.js';
import { FlintError } from '../../src/errors/FlintError.js';
import { toWireError } from '../../src/errors/toWireError.js';

test('every code has a status, an OpenAI type and a message; names are unique and well-formed', () => {
  const names = Object.keys(errorCodes);
  assert.equal(new Set(names).size, names.length);
  for (const [name, row] of Object.entries(errorCodes)) {
    assert.match(name, /^FLINT_ERR_[A-Z_]+$/);
    assert.ok(row.status >= 400 && row.status < 600, name);
    assert.ok(row.type.endsWith('_error'), name);
    assert.ok(row.message.length > 0, name);
  }
});

test('toWireError produces the four-key envelope with the table status', () => {
  for (const code of Object.keys(errorCodes) as ErrorCode[]) {
    const wire = toWireError(new FlintError(code, { param: 'x', details: { retryAfterS: 3 } }));
    assert.equal(wire.status, errorCodes[code].status);
    assert.deepEqual(Object.keys(wire.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(wire.body.error.code, errorCodes[code].code);
    assert.equal(wire.headers['retry-after'], '3');
  }
});

test('unknown errors become a generic 500 without leaking details', () => {
  const wire = toWireError(new Error('secret path /etc/passwd'));
  assert.equal(wire.status, 500);
  assert.equal(wire.isExpected, false);
  assert.doesNotMatch(wire.body.error.message, /passwd/);
  assert.equal(wire.body.error.type, 'server_error');
});

test('messages fill their templates', () => {
  const err = new FlintError('FLINT_ERR_CONTEXT_OVERFLOW', { param: 'messages', details: { contextSize: 512, promptTokens: 900 } });
  assert.match(err.message, /512 tokens/);
  assert.match(err.message, /900 tokens/);
  assert.equal(err.status, 400);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkJsonShape } from '../../src/utils/checkJsonShape.js';

const limits = { maxDepth: 8, maxArrayItems: 3 };

test('bodies within the limits pass, whatever their strings hold', () => {
  assert.equal(checkJsonShape('{"a":[1,2,3],"b":{"c":"[[[[[[[[[[,,,,"}}', limits), undefined);
  assert.equal(checkJsonShape('{"s":"escaped \\" [ quote","t":[]}', limits), undefined);
  assert.equal(checkJsonShape('[1,2,3]', limits), undefined);
});

test('too deep: the param names the container that goes too deep', () => {
  assert.deepEqual(checkJsonShape(`{"tool_choice":{"type":"allowed_tools","tools":${'['.repeat(10)}${']'.repeat(10)}}}`, limits), {
    param: 'tool_choice.tools[0][0][0][0][0][0]',
    detail: 'nesting deeper than 8 levels',
  });
  assert.equal(checkJsonShape('['.repeat(100_000), limits)?.detail, 'nesting deeper than 8 levels');
});

test('too many items: the param names the array', () => {
  assert.deepEqual(checkJsonShape('{"input":[{"x":1},{"y":[1,2]},"a","b"]}', limits), { param: 'input', detail: 'an array of more than 3 items' });
  assert.deepEqual(checkJsonShape('{"input":[[1,2,3,4]]}', limits), { param: 'input[0]', detail: 'an array of more than 3 items' });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ToolCallDetector, type DetectorOutput } from '../../src/worker/ToolCallDetector.js';

const syntax = { start: '<tool_call>', end: '</tool_call>' };

function run(chunks: string[], tools = ['read_file']): DetectorOutput[] {
  const detector = new ToolCallDetector(syntax, tools);
  return [...chunks.flatMap((c) => detector.push(c)), ...detector.flush()];
}

const text = (out: DetectorOutput[]) => out.filter((o) => o.type === 'text').map((o) => (o as { text: string }).text).join('');
const calls = (out: DetectorOutput[]) => out.filter((o) => o.type === 'call').map((o) => (o as { call: { name: string; arguments: string } }).call);

test('a call split across chunks is parsed; the marker never leaks into text', () => {
  const out = run(['Let me look.', '<tool', '_call>\n{"name": "read_', 'file", "arguments": {"path": "a.ts"}}\n</tool_', 'call>']);
  assert.equal(text(out), 'Let me look.');
  assert.deepEqual(calls(out).map((c) => [c.name, c.arguments]), [['read_file', '{"path":"a.ts"}']]);
});

test('parallel calls with whitespace between them', () => {
  const body = (p: string) => `<tool_call>\n{"name": "read_file", "arguments": {"path": "${p}"}}\n</tool_call>`;
  const out = run([body('a'), '\n', body('b')]);
  assert.equal(calls(out).length, 2);
  assert.equal(text(out), '');
});

test('malformed calls degrade to text instead of failing', () => {
  const broken = '<tool_call>\n{"name": "read_file", "arguments": {"path": </tool_call>';
  assert.equal(text(run([broken])), broken);
  const unknownTool = '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>';
  assert.equal(text(run([unknownTool])), unknownTool);
  assert.equal(text(run(['<tool_call>{"name": "read_file"'])), '<tool_call>{"name": "read_file"', 'an unfinished call at the end is text');
  assert.equal(text(run(['plain <tool text'])), 'plain <tool text', 'a partial marker is released at the end');
});

test('arguments given as a JSON string are accepted', () => {
  const out = run(['<tool_call>{"name": "read_file", "arguments": "{\\"path\\": \\"x\\"}"}</tool_call>']);
  assert.equal(calls(out)[0].arguments, '{"path":"x"}');
});

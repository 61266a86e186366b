import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DownloadProgress, formatBytes, formatDuration } from '../../src/modelfiles/DownloadProgress.js';

function progress(isTty: boolean) {
  let now = 0;
  const out: string[] = [];
  const bar = new DownloadProgress('model.gguf', { isTty, write: (t) => out.push(t), intervalMs: 5_000, columns: 100, now: () => now });
  return { bar, out, tick: (ms: number) => (now += ms) };
}

test('not a terminal: a plain line with bytes, speed and ETA every interval, and one at the end', () => {
  const { bar, out, tick } = progress(false);
  bar.update(0, 100e6);
  for (let i = 1; i <= 10; i++) {
    tick(1_000);
    bar.update(i * 10e6, 100e6);
  }
  bar.finish();
  assert.deepEqual(out, [
    'model.gguf: 0.0%  0 B / 100.0 MB  0 B/s  ETA --\n',
    'model.gguf: 50.0%  50.0 MB / 100.0 MB  10.0 MB/s  ETA 5s\n',
    'model.gguf: 100.0%  100.0 MB / 100.0 MB  10.0 MB/s  ETA 0s\n',
  ]);
});

test('a terminal: one bar redrawn in place; resumed bytes count as done but not as speed', () => {
  const { bar, out, tick } = progress(true);
  bar.update(60e6, 100e6);
  tick(2_000);
  bar.update(64e6, 100e6);
  bar.message('verifying');
  assert.match(out[1], /^\r\x1b\[K/);
  assert.match(out[1], /model\.gguf \[=+>? *\]  64\.0%  64\.0 MB \/ 100\.0 MB  2\.0 MB\/s  ETA 18s$/);
  assert.equal(out[2], '\r\x1b[K', 'a message clears the bar first');
  assert.equal(out[3], 'verifying\n');
});

test('units', () => {
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(18_556_689_568), '18.6 GB');
  assert.equal(formatDuration(187), '3m07s');
  assert.equal(formatDuration(3_720), '1h02m');
});

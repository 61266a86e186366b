import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { SavedPrefixes } from '../../src/worker/SavedPrefixes.js';

test('saved prefixes live in /dev/shm when it can hold the budget, on disk when it cannot', () => {
  assert.ok(existsSync('/dev/shm'), 'this test needs a Linux /dev/shm');
  const small = new SavedPrefixes(1024 * 1024);
  const huge = new SavedPrefixes(2 ** 50); // a petabyte: no /dev/shm holds that
  try {
    assert.ok(small.directory.startsWith('/dev/shm/'), small.directory);
    assert.ok(huge.directory.startsWith(tmpdir()), huge.directory);
  } finally {
    small.dispose();
    huge.dispose();
  }
});

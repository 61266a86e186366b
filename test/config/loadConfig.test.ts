import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig, redactConfig } from '../../src/config/loadConfig.js';
import { FlintError } from '../../src/errors/FlintError.js';
import { repoRoot } from '../helpers/testModel.js';

const dir = mkdtempSync(path.join(tmpdir(), 'flint-config-'));

test('defaults < file < env < flags', () => {
  const file = path.join(dir, 'a.yaml');
  writeFileSync(file, 'server:\n  port: 9000\n  host: 0.0.0.0\nengine:\n  slots: 4\n');
  const { config } = loadConfig({ flags: { config: file, port: '9100' }, env: { FLINT_HOST: '127.0.0.2', FLINT_SLOTS: '3' } });
  assert.equal(config.server.port, 9100);
  assert.equal(config.server.host, '127.0.0.2');
  assert.equal(config.engine.slots, 3);
  assert.equal(config.engine.workers, 1);
  assert.ok(Object.isFrozen(config.server));
});

test('the committed config/flint.yaml is valid and states the defaults, but for the disk prompt cache it turns on', () => {
  const committed = loadConfig({ env: {}, defaultFile: path.join(repoRoot, 'config', 'flint.yaml') });
  assert.ok(committed.file?.endsWith('flint.yaml'));
  const defaults = loadConfig({ env: {} }).config;
  assert.equal(defaults.engine.diskCacheBytes, 0, 'off unless configured');
  assert.equal(committed.config.engine.diskCacheBytes, 4 * 1024 ** 3);
  assert.deepEqual(committed.config, { ...defaults, engine: { ...defaults.engine, diskCacheBytes: committed.config.engine.diskCacheBytes } });
  assert.equal(loadConfig({ env: { FLINT_DISK_CACHE_BYTES: '0' }, defaultFile: path.join(repoRoot, 'config', 'flint.yaml') }).config.engine.diskCacheBytes, 0, 'FLINT_DISK_CACHE_BYTES overrides the file');
});

test('invalid values are all reported, naming the key and the allowed values', () => {
  const file = path.join(dir, 'b.yaml');
  writeFileSync(file, 'engine:\n  gpu: quantum\n  workerz: 2\n');
  assert.throws(
    () => loadConfig({ flags: { config: file }, env: { FLINT_PORT: '70000', FLINT_LOG_LEVEL: 'loud' } }),
    (err: unknown) => {
      assert.ok(err instanceof FlintError);
      assert.equal(err.code, 'FLINT_ERR_CONFIG');
      assert.match(err.message, /server\.port/);
      assert.match(err.message, /<= 65535/);
      assert.match(err.message, /engine\.gpu.*"off"/);
      assert.match(err.message, /engine\.workerz: unknown key/);
      assert.match(err.message, /logging\.level.*"debug"/);
      return true;
    },
  );
});

test('a missing explicit config file and bad YAML are errors', () => {
  assert.throws(() => loadConfig({ flags: { config: path.join(dir, 'nope.yaml') }, env: {} }), /cannot be read/);
  const bad = path.join(dir, 'c.yaml');
  writeFileSync(bad, 'server: [unclosed');
  assert.throws(() => loadConfig({ flags: { config: bad }, env: {} }), /not valid YAML/);
});

test('API keys come from FLINT_API_KEYS and are redacted for logging', () => {
  const { config } = loadConfig({ env: { FLINT_API_KEYS: 'k1, k2' } });
  assert.deepEqual(config.server.apiKeys, ['k1', 'k2']);
  assert.doesNotMatch(JSON.stringify(redactConfig(config)), /k1|k2/);
});

test('a host reachable from other machines without keys refuses to start, unless a proxy authenticates', () => {
  assert.throws(() => loadConfig({ env: { FLINT_HOST: '0.0.0.0' } }), /server\.host: '0\.0\.0\.0' is reachable from other machines but server\.apiKeys is empty/);
  assert.equal(loadConfig({ env: { FLINT_HOST: '0.0.0.0', FLINT_API_KEYS: 'k' } }).config.server.host, '0.0.0.0');
  assert.equal(loadConfig({ env: { FLINT_HOST: '127.0.0.5' } }).config.server.host, '127.0.0.5');
  assert.equal(loadConfig({ env: { FLINT_HOST: '0.0.0.0', FLINT_API_KEYS: 'k', FLINT_METRICS_TOKEN: 't' } }).config.metrics.token, 't');
});

test('upstreams: a front without workers needs members; names are unique, URLs http(s), keys redacted', () => {
  const file = path.join(dir, 'front.yaml');
  writeFileSync(file, 'engine:\n  workers: 0\nupstreams:\n  - { name: a, url: "http://127.0.0.2:8080", kind: llama-server, key: secret }\n');
  const { config } = loadConfig({ flags: { config: file }, env: {} });
  assert.deepEqual(config.upstreams, [{ name: 'a', url: 'http://127.0.0.2:8080', kind: 'llama-server', key: 'secret', model: '', slots: 4, render: 'member' }]);
  assert.equal(config.upstream.retries, 2);
  assert.doesNotMatch(JSON.stringify(redactConfig(config)), /secret/);
  const refused = (yaml: string, pattern: RegExp) => {
    writeFileSync(file, yaml);
    assert.throws(() => loadConfig({ flags: { config: file }, env: {} }), (err: unknown) => err instanceof FlintError && pattern.test(err.message));
  };
  refused('engine:\n  workers: 0\n', /engine\.workers: 0 local workers needs at least one entry in upstreams/);
  refused('upstreams:\n  - { name: a, url: "http://h:1" }\n  - { name: a, url: "http://h:2" }\n', /the name 'a' is used twice/);
  refused('upstreams:\n  - { name: a, url: "ftp://h" }\n', /upstreams\.0\.url/);
  refused('upstreams:\n  - { name: a, url: "http://h", kind: tgi }\n', /upstreams\.0\.kind/);
  refused('upstreams:\n  - { name: a, url: "http://h:1", kind: openai, render: front }\n', /'a' has render: front, which llama-server, vllm and ollama members take/);
  refused('upstreams:\n  - { name: a, url: "http://h:1", kind: llama-server, render: front }\n', /'a' has render: front, which needs model\.path/);
  writeFileSync(file, 'model:\n  path: models/m.gguf\nupstreams:\n  - { name: a, url: "http://h:1", kind: llama-server, render: front }\n');
  assert.equal(loadConfig({ flags: { config: file }, env: {} }).config.upstreams[0].render, 'front');
});

test('engine.backend llama-server needs its binary, from the file or FLINT_LLAMA_SERVER; other backends are refused', () => {
  assert.throws(() => loadConfig({ env: { FLINT_BACKEND: 'llama-server' } }), /engine\.backend: 'llama-server' needs the binary: set engine\.llamaServer\.path or FLINT_LLAMA_SERVER/);
  const { config } = loadConfig({ env: { FLINT_BACKEND: 'llama-server', FLINT_LLAMA_SERVER: '/opt/llama/llama-server' } });
  assert.equal(config.engine.backend, 'llama-server');
  assert.deepEqual(config.engine.llamaServer, { path: '/opt/llama/llama-server', args: [] });
  assert.equal(loadConfig({ env: {} }).config.engine.backend, 'node-llama-cpp');
  assert.throws(() => loadConfig({ env: { FLINT_BACKEND: 'vllm' } }), /engine\.backend/);
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/loadConfig.js';
import { parseDockerfile } from '../helpers/dockerfile.js';
import { repoRoot } from '../helpers/testModel.js';

// docker/compose.scale.yaml and docker/haproxy.cfg checked without a Docker engine: the files fit
// each other and Flint, the balancer hashes on the session key Flint reads, and `haproxy -c`
// accepts the configuration (when haproxy is installed; test/cluster/ runs it for real).

const dockerDir = path.join(repoRoot, 'docker');
const cfgFile = path.join(dockerDir, 'haproxy.cfg');
const cfg = readFileSync(cfgFile, 'utf8');
const defaults = loadConfig({ env: {} }).config;

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  hostname?: string;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  stop_grace_period?: string;
  depends_on?: string[];
}
const compose = parseYaml(readFileSync(path.join(dockerDir, 'compose.scale.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };

/** `${NAME-default}` of haproxy.cfg: the value HAProxy uses when the variable is not set. */
function cfgDefault(name: string): string {
  const match = new RegExp(`"\\$\\{${name}-([^}]*)\\}"`).exec(cfg);
  assert.ok(match, `haproxy.cfg reads ${name} with a default`);
  return match[1];
}

/** Milliseconds of an HAProxy or Docker time ("2s", "500ms", "1h"; HAProxy reads a bare number as ms). */
function ms(time: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(time);
  assert.ok(match, time);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms']!;
}

test('compose.scale.yaml: two Flint nodes behind HAProxy; names, ports, volumes and builds fit', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), ['flint-a', 'flint-b', 'haproxy']);
  const { haproxy } = compose.services;
  for (const name of ['flint-a', 'flint-b']) {
    const node = compose.services[name];
    assert.equal(node.hostname, name, `${name}: x-flint-replica is the host name`);
    assert.equal(node.ports, undefined, `${name}: reached through HAProxy only`);
    assert.match(node.environment!.FLINT_API_KEYS, /:\?/, `${name}: keys are required (the node listens on all interfaces)`);
    assert.ok(node.volumes!.includes(`${name}-data:/data`) && `${name}-data` in compose.volumes, `${name}: a data volume of its own`);
    assert.equal(haproxy.environment![`FLINT_${name.at(-1)!.toUpperCase()}`], `${name}:${defaults.server.port}`);
    // Docker kills the container stop_grace_period after SIGTERM: more than Flint's drain and the
    // margin main.ts allows the rest of its shutdown before it exits by force.
    const forceExitMarginMs = Number(/shutdownGraceMs \+ ([\d_]+)\)/.exec(readFileSync(path.join(repoRoot, 'src', 'main.ts'), 'utf8'))![1].replace(/_/g, ''));
    assert.ok(ms(node.stop_grace_period!) > defaults.server.shutdownGraceMs + forceExitMarginMs, `${name}: stop_grace_period ${node.stop_grace_period}`);
  }
  assert.deepEqual(haproxy.ports, ['127.0.0.1:8080:8080']);
  assert.equal(cfgDefault('HAPROXY_BIND'), ':8080');
  assert.deepEqual(haproxy.depends_on, ['flint-a', 'flint-b']);
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.build) assert.ok(existsSync(path.resolve(dockerDir, service.build.context, service.build.dockerfile)), `${name}: ${service.build.dockerfile}`);
  }
  // HAProxy's image: Debian's package (the one test/cluster/ runs), this configuration, not root.
  const image = parseDockerfile(path.join(dockerDir, 'Dockerfile.haproxy'));
  const [stage] = image.stages;
  assert.match(stage.from, /^debian:/);
  assert.ok(stage.run.some((r) => /apt-get install .*haproxy/.test(r)));
  assert.deepEqual(stage.copies, ['docker/haproxy.cfg']);
  assert.ok(stage.user && stage.user !== 'root');
  assert.deepEqual(stage.cmd, ['haproxy', '-db', '-f', '/etc/haproxy/haproxy.cfg']);
});

test('haproxy.cfg: consistent hashing on the session key in Flint\u2019s order, /ready checks, sessions shut on a node marked down', () => {
  // Each later set-var overrides the earlier, so the rules run from the lowest precedence up.
  const sources = [...cfg.matchAll(/^\s*http-request set-var\(txn\.flint_session\) (\S+)/gm)].map((m) => m[1]);
  const key = sources.reverse().map((s) => /^req\.hdr\((.+)\)$/.exec(s)?.[1] ?? /^url_param\((.+)\)$/.exec(s)?.[1].replace(/^/, '?'));
  assert.deepEqual(key, [...defaults.websocket.sessionHeaders, '?session']);
  assert.match(cfg, /^\s*balance hash var\(txn\.flint_session\)$/m);
  assert.match(cfg, /^\s*hash-type consistent$/m);
  assert.match(cfg, /^\s*option httpchk GET \/ready$/m);
  assert.match(cfg, /^\s*http-check expect status 200$/m);
  assert.match(cfg, /^\s*default-server .*\bcheck\b.*\bon-marked-down shutdown-sessions\b/m);
  assert.match(cfg, /^\s*option redispatch\b/m);
  assert.match(cfg, /^\s*retry-on conn-failure empty-response$/m);
  // Inactivity limits above what a live Flint stream can be silent for, and a WebSocket's lifetime.
  assert.ok(ms(/^\s*timeout server (\S+)/m.exec(cfg)![1]) > defaults.server.progressEventMs * 10);
  assert.ok(ms(/^\s*timeout client (\S+)/m.exec(cfg)![1]) > defaults.server.progressEventMs * 10);
  assert.ok(ms(/^\s*timeout tunnel (\S+)/m.exec(cfg)![1]) >= defaults.websocket.maxLifetimeMs);
});

test('haproxy.cfg: a draining node is marked down only after its drain; compose sets the defaults the file has', () => {
  const { haproxy } = compose.services;
  const fromCompose = (name: string) => /^\$\{\w+:-(.+)\}$/.exec(haproxy.environment![name])![1];
  for (const name of ['FLINT_CHECK_INTER', 'FLINT_CHECK_FALL', 'FLINT_CHECK_TIMEOUT']) assert.equal(fromCompose(name), cfgDefault(name), name);
  const interMs = ms(cfgDefault('FLINT_CHECK_INTER'));
  const fall = Number(cfgDefault('FLINT_CHECK_FALL'));
  // The first failed check may come right after SIGTERM: down after (fall - 1) intervals at the
  // soonest, which must leave the streams their grace period and a second for their terminal events.
  assert.ok((fall - 1) * interMs > defaults.server.shutdownGraceMs + 1_000, `(${fall} - 1) x ${interMs} ms`);
  // A hung node: every check waits `timeout check` for an answer.
  const hungMs = fall * (interMs + ms(cfgDefault('FLINT_CHECK_TIMEOUT')));
  assert.ok(hungMs <= 30_000, `a hung node is out within ${hungMs} ms`);
});

test('haproxy -c accepts haproxy.cfg with compose\u2019s environment and with the test cluster\u2019s', (t) => {
  if (spawnSync('haproxy', ['-v']).error) {
    t.skip('haproxy is not installed (apt-get install -y haproxy)');
    return;
  }
  const environments = {
    compose: Object.fromEntries(Object.entries(compose.services.haproxy.environment!).map(([k, v]) => [k, v.replace(/^\$\{\w+:-(.+)\}$/, '$1')])),
    cluster: { FLINT_A: '127.0.0.2:8080', FLINT_B: '127.0.0.3:8080', HAPROXY_BIND: '127.0.0.1:18080', FLINT_CHECK_INTER: '500ms', FLINT_CHECK_FALL: '8', FLINT_CHECK_TIMEOUT: '500ms' },
  };
  for (const [name, env] of Object.entries(environments)) {
    const check = spawnSync('haproxy', ['-c', '-f', cfgFile], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
    assert.equal(check.status, 0, `${name}: ${check.stdout}${check.stderr}`);
  }
  const broken = spawnSync('haproxy', ['-c', '-f', cfgFile], { env: { PATH: process.env.PATH, FLINT_CHECK_INTER: 'soon' }, encoding: 'utf8' });
  assert.notEqual(broken.status, 0, 'haproxy -c catches a bad value');
});

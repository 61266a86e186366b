import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/metrics/metrics.js';
import { repoRoot } from '../helpers/testModel.js';
import { parseDockerfile } from '../helpers/dockerfile.js';

// What can be checked of the Docker stack without a Docker engine: files parse, references resolve,
// the dashboard asks only for metrics Flint exports, and the images are built the way we claim.

const dockerDir = path.join(repoRoot, 'docker');
const readYaml = (file: string) => parseYaml(readFileSync(path.join(dockerDir, file), 'utf8'), { merge: true }) as Record<string, any>;

interface ComposeService {
  build?: { context: string; dockerfile: string };
  profiles?: string[];
  volumes?: string[];
  networks?: Record<string, { aliases?: string[] }>;
  deploy?: { resources: { reservations: { devices: Array<{ driver: string; capabilities: string[] }> } } };
  environment?: Record<string, string>;
  entrypoint?: string[];
}

test('compose: Flint (CPU and GPU profiles), Prometheus and Grafana; every file it mounts or builds from exists', () => {
  const compose = readYaml('compose.yaml') as { services: Record<string, ComposeService> };
  assert.deepEqual(Object.keys(compose.services).sort(), ['flint', 'flint-gpu', 'grafana', 'prometheus']);
  const { flint, 'flint-gpu': gpu, prometheus, grafana } = compose.services;
  assert.deepEqual([flint.profiles, gpu.profiles], [['cpu'], ['gpu']]);
  assert.ok(gpu.networks?.default.aliases?.includes('flint'), 'Prometheus finds the GPU service as flint');
  assert.equal(gpu.deploy?.resources.reservations.devices[0].driver, 'nvidia');
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.build) assert.ok(existsSync(path.resolve(dockerDir, service.build.context, service.build.dockerfile)), `${name}: ${service.build.dockerfile}`);
    for (const volume of service.volumes ?? []) {
      const source = volume.split(':')[0];
      if (source.startsWith('.')) assert.ok(existsSync(path.resolve(dockerDir, source)), `${name} mounts ${source}`);
    }
  }
  assert.match(String(flint.environment?.FLINT_METRICS_TOKEN), /FLINT_METRICS_TOKEN/);
  assert.match(prometheus.entrypoint!.join(' '), /FLINT_METRICS_TOKEN.*> \/tmp\/flint-metrics-token/, 'the scrape token file is written from the environment');
  assert.ok(grafana.volumes?.includes('./grafana/provisioning:/etc/grafana/provisioning:ro'));
});

test('Prometheus scrapes flint:8080/metrics with the token; Grafana provisions that Prometheus and the dashboard folder compose mounts', () => {
  const prometheus = readYaml('prometheus.yml');
  const job = prometheus.scrape_configs[0];
  assert.deepEqual([job.metrics_path, job.static_configs[0].targets, job.authorization.credentials_file], ['/metrics', ['flint:8080'], '/tmp/flint-metrics-token']);
  const datasource = readYaml('grafana/provisioning/datasources/prometheus.yaml').datasources[0];
  assert.deepEqual([datasource.type, datasource.url, datasource.isDefault], ['prometheus', 'http://prometheus:9090', true]);
  const provider = readYaml('grafana/provisioning/dashboards/flint.yaml').providers[0];
  const compose = readYaml('compose.yaml') as { services: Record<string, ComposeService> };
  const mounted = compose.services.grafana.volumes!.find((v) => v.startsWith('./grafana/flint-dashboard.json:'))!.split(':')[1];
  assert.equal(path.posix.dirname(mounted), provider.options.path);
});

test('the dashboard: every PromQL expression names only metrics Flint exports', async () => {
  const dashboard = JSON.parse(readFileSync(path.join(dockerDir, 'grafana', 'flint-dashboard.json'), 'utf8'));
  const exprs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if ((key === 'expr' || key === 'query') && typeof value === 'string') exprs.push(value);
        else walk(value);
      }
    }
  };
  walk(dashboard);
  assert.ok(exprs.length > 30, `found ${exprs.length} expressions`);
  const metrics = createMetrics();
  const exported = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    exported.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(metric.name + suffix);
    if (String(metric.type) === 'summary') for (const suffix of ['_sum', '_count']) exported.add(metric.name + suffix);
  }
  const unknown = new Set<string>();
  const referenced = new Set<string>();
  for (const expr of exprs) {
    const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
    for (const [name] of withoutStrings.matchAll(/\b[a-z_][a-z0-9_]*\b/g)) {
      if (!name.startsWith('flint_')) continue;
      referenced.add(name);
      if (!exported.has(name)) unknown.add(name);
    }
  }
  assert.ok(referenced.size > 20, `the expressions name ${referenced.size} metrics`);
  assert.deepEqual([...unknown], []);
});

test('the images: multi-stage on a maintained Node LTS, production dependencies only, non-root, volumes, a /health check, serve as the start command', () => {
  for (const file of ['Dockerfile', 'Dockerfile.cuda']) {
    const image = parseDockerfile(path.join(dockerDir, file));
    assert.ok(image.stages.length >= 2, `${file}: multi-stage`);
    assert.ok(image.stages.every((s) => !/^node:/.test(s.from) || /^node:(\$\{NODE_VERSION\}|2[2-9])/.test(s.from)), `${file}: ${image.stages.map((s) => s.from)}`);
    assert.match(image.args.NODE_VERSION ?? '', /^(2[4-9]|22)$/, `${file}: NODE_VERSION`);
    assert.ok(image.stages[0].run.some((r) => /npm ci --omit=dev/.test(r)), `${file}: production-only install`);
    const final = image.stages[image.stages.length - 1];
    assert.ok(final.user && final.user !== 'root' && final.user !== '0', `${file}: USER ${final.user}`);
    assert.ok(final.volumes.includes('/app/models') && final.volumes.includes('/data'), `${file}: volumes`);
    assert.match(final.healthcheck ?? '', /\/health/, `${file}: HEALTHCHECK`);
    assert.deepEqual([...final.entrypoint, ...final.cmd], ['node', 'bin/flint.js', 'serve'], file);
    assert.match(final.env.FLINT_HOST ?? '', /0\.0\.0\.0/);
    for (const source of final.copies) assert.ok(existsSync(path.join(repoRoot, source)), `${file}: COPY ${source}`);
  }
  assert.equal(parseDockerfile(path.join(dockerDir, 'Dockerfile.cuda')).stages.at(-1)!.env.FLINT_GPU, 'cuda');
});

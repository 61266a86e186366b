import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Ajv, type AnySchema } from 'ajv';
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { envVariables, loadConfig } from '../../src/config/loadConfig.js';
import { kubectlKustomize, renderKustomization, type Manifest } from '../helpers/kustomize.js';
import { hasTypes, typeErrors } from '../helpers/manifestTypes.js';
import { healthPaths } from '../../src/pool/upstreamRequest.js';
import { repoRoot } from '../helpers/testModel.js';

// deploy/k8s checked offline: the kustomizations render (as kubectl kustomize does, compared with
// it when kubectl is installed); every object passes its schema (kubernetes-models' validators,
// TypeScript's excess property check against their interfaces for unknown fields, and Envoy
// Gateway's CRD schemas for its policies); and the pieces fit Flint and each other.

const k8sDir = path.join(repoRoot, 'deploy', 'k8s');
const base = renderKustomization(path.join(k8sDir, 'base'));
const envoy = renderKustomization(path.join(k8sDir, 'overlays', 'envoy-gateway'));
const monitored = renderKustomization(path.join(k8sDir, 'base'), ['../components/servicemonitor']);
const pool = renderKustomization(path.join(k8sDir, 'overlays', 'front-llama-server'));
const defaults = loadConfig({ env: {} }).config;

const models: Record<string, { new (data: never): { validate(): void } }> = {
  'v1 ConfigMap': ConfigMap,
  'v1 Service': Service,
  'apps/v1 StatefulSet': StatefulSet,
  'policy/v1 PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1 ServiceMonitor': ServiceMonitor,
  'gateway.networking.k8s.io/v1 Gateway': Gateway,
  'gateway.networking.k8s.io/v1 HTTPRoute': HTTPRoute,
};

function find<T = any>(objects: readonly Manifest[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind} ${name}`);
  return found as T;
}

const byId = (objects: readonly Manifest[]) => [...objects].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));

test('the kustomizations render the objects kubectl kustomize renders', (t) => {
  assert.deepEqual(byId(base).map((o) => `${o.kind}/${o.metadata.name}`), ['ConfigMap/flint-config', 'ConfigMap/flint-env', 'PodDisruptionBudget/flint', 'Service/flint', 'Service/flint-headless', 'StatefulSet/flint']);
  assert.deepEqual(
    byId(envoy).map((o) => `${o.kind}/${o.metadata.name}`).filter((id) => !base.some((b) => `${b.kind}/${b.metadata.name}` === id)),
    ['BackendTrafficPolicy/flint', 'BackendTrafficPolicy/flint-session-query', 'ClientTrafficPolicy/flint', 'Gateway/flint', 'HTTPRoute/flint'],
  );
  assert.ok(monitored.some((o) => o.kind === 'ServiceMonitor'));
  assert.deepEqual(byId(pool).map((o) => `${o.kind}/${o.metadata.name}`), ['ConfigMap/flint-config', 'ConfigMap/flint-env', 'PodDisruptionBudget/flint', 'Service/flint', 'Service/flint-headless', 'Service/llama-server', 'StatefulSet/flint', 'StatefulSet/llama-server']);
  const rendered: Record<string, Manifest[]> = { base, 'overlays/envoy-gateway': envoy, 'overlays/front-llama-server': pool };
  for (const [dir, objects] of Object.entries(rendered)) {
    const kubectl = kubectlKustomize(path.join(k8sDir, dir));
    if (!kubectl) {
      t.diagnostic('kubectl is not installed: the renderer was not compared with kubectl kustomize');
      return;
    }
    assert.deepEqual(byId(kubectl), byId(objects), dir);
  }
});

test('every object passes its kubernetes-models schema, and has no field its type does not know', () => {
  const typed = [...envoy, ...monitored.filter((o) => o.kind === 'ServiceMonitor')].filter(hasTypes);
  assert.equal(typed.length, 9);
  for (const o of typed) {
    const Model = models[`${o.apiVersion} ${o.kind}`];
    assert.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`);
  }
  const wrongType = structuredClone(find(typed, 'StatefulSet', 'flint'));
  wrongType.spec.template.spec.containers[0].ports[0].containerPort = 'http';
  assert.throws(() => new StatefulSet(wrongType).validate(), /containerPort must be integer/, 'the validators check types');
  assert.deepEqual(typeErrors(typed), []);
  // The check finds a misspelt field at any depth.
  const broken = structuredClone(find(typed, 'StatefulSet', 'flint'));
  broken.spec.template.spec.containers[0].readinessProbe.httpGet.pth = '/ready';
  assert.match(typeErrors([broken]).join('\n'), /'"pth"' does not exist/);
});

test("Envoy Gateway's policies pass the schemas of its CRDs (v1.9.0), unknown fields refused", () => {
  const schemas = JSON.parse(readFileSync(path.join(repoRoot, 'test', 'deploy', 'schemas', 'envoy-gateway-v1.9.0.json'), 'utf8')) as Record<string, AnySchema>;
  // The API server prunes fields a structural schema does not declare; refuse them here instead.
  const strict = (node: any): any => {
    if (Array.isArray(node)) return node.map(strict);
    if (!node || typeof node !== 'object') return node;
    const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strict(s)])) : strict(v)]));
    if (out.type === 'object' && out.properties && out.additionalProperties === undefined && !out['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
    return out;
  };
  const ajv = new Ajv({ strict: false, allErrors: true });
  // The OpenAPI formats Kubernetes uses.
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  ajv.addFormat('date-time', (text: string) => !Number.isNaN(Date.parse(text)));
  const policies = envoy.filter((o) => o.apiVersion === 'gateway.envoyproxy.io/v1alpha1');
  assert.equal(policies.length, 3);
  for (const policy of policies) {
    const validate = ajv.compile(strict(schemas[policy.kind]));
    const { metadata, ...rest } = policy;
    assert.ok(validate({ ...rest, metadata: {} }), `${policy.kind} ${metadata.name}: ${ajv.errorsText(validate.errors)}`);
    const typo = structuredClone(rest) as any;
    typo.spec.healthChek = typo.spec.healthCheck;
    assert.equal(validate({ ...typo, metadata: {} }), false, 'a misspelt field is refused');
  }
  // CEL rules of the CRDs, which no JSON Schema validator runs: a ConsistentHash has the field of its type.
  for (const policy of policies.filter((p) => p.kind === 'BackendTrafficPolicy') as any[]) {
    const hash = policy.spec.loadBalancer.consistentHash;
    assert.equal(policy.spec.loadBalancer.type, 'ConsistentHash');
    assert.ok(hash[{ Headers: 'headers', QueryParams: 'queryParams', Header: 'header', Cookie: 'cookie' }[hash.type as string]!], policy.metadata.name);
  }
});

test('the StatefulSet: probes, drain, grace period, configuration, secrets and its volume fit Flint', () => {
  const sts = find(base, 'StatefulSet', 'flint');
  const pod = sts.spec.template.spec;
  const [container] = pod.containers;
  assert.deepEqual(container.ports, [{ name: 'http', containerPort: defaults.server.port }]);
  assert.equal(container.livenessProbe.httpGet.path, '/health');
  assert.equal(container.startupProbe.httpGet.path, '/health');
  assert.equal(container.readinessProbe.httpGet.path, '/ready');
  for (const probe of [container.livenessProbe, container.startupProbe, container.readinessProbe]) assert.equal(probe.httpGet.port, 'http');

  // Kubernetes kills the pod terminationGracePeriodSeconds after it starts stopping it: the
  // preStop pause, then Flint's drain (shutdownGraceMs), then at most the margin main.ts allows
  // the rest of the shutdown (terminal events, WebSocket closes, the workers' write-back) before
  // it exits by force.
  const forceExitMarginMs = Number(/shutdownGraceMs \+ ([\d_]+)\)/.exec(readFileSync(path.join(repoRoot, 'src', 'main.ts'), 'utf8'))![1].replace(/_/g, ''));
  assert.ok(forceExitMarginMs >= 3_000, 'the margin covers the workers\u2019 write-back');
  const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
  assert.deepEqual(container.lifecycle.preStop.exec.command, ['sleep', String(preStopS)]);
  const config = loadClusterConfig();
  const neededS = preStopS + (config.server.shutdownGraceMs + forceExitMarginMs) / 1000;
  assert.ok(sts.spec.template.spec.terminationGracePeriodSeconds > neededS, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} <= ${neededS}`);

  // FLINT_* from the ConfigMap (each one Flint reads), FLINT_CONFIG at the mounted flint.yaml,
  // API keys and the metrics token from the Secret, FLINT_DATA_DIR on the claim template's volume.
  assert.deepEqual(container.envFrom, [{ configMapRef: { name: 'flint-env' } }]);
  const env = find(base, 'ConfigMap', 'flint-env').data as Record<string, string>;
  const known = new Set(envVariables.map(([name]) => name));
  for (const name of Object.keys(env)) assert.ok(known.has(name), `${name} is a variable Flint reads`);
  const direct = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
  assert.deepEqual(direct.FLINT_API_KEYS, { secretKeyRef: { name: 'flint-secrets', key: 'api-keys' } });
  assert.deepEqual(direct.FLINT_METRICS_TOKEN, { secretKeyRef: { name: 'flint-secrets', key: 'metrics-token' } });
  const mount = (name: string) => container.volumeMounts.find((m: any) => m.name === name);
  assert.equal(path.posix.dirname(direct.FLINT_CONFIG), mount('config').mountPath);
  assert.equal(pod.volumes.find((v: any) => v.name === 'config').configMap.name, 'flint-config');
  assert.ok(path.posix.basename(direct.FLINT_CONFIG) in find(base, 'ConfigMap', 'flint-config').data);
  assert.equal(sts.spec.volumeClaimTemplates[0].metadata.name, 'data');
  assert.equal(mount('data').mountPath, env.FLINT_DATA_DIR);
  assert.ok(config.model.dir.startsWith(`${env.FLINT_DATA_DIR}/`), 'pulled models are kept on the volume');
  assert.ok(Number(env.FLINT_THREADS) > 0 && Number(env.FLINT_THREADS) <= Number(container.resources.requests.cpu), 'threads fit the CPU request');
  assert.deepEqual(sts.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'flint' });
  assert.deepEqual(sts.spec.template.metadata.labels, sts.spec.selector.matchLabels);
});

/** Flint's configuration as a pod loads it: flint-config's file under the environment of flint-env and the Secret. */
function loadClusterConfig(objects: readonly Manifest[] = base) {
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-k8s-'));
  try {
    writeFileSync(path.join(dir, 'flint.yaml'), find(objects, 'ConfigMap', 'flint-config').data['flint.yaml']);
    const env = { ...find(objects, 'ConfigMap', 'flint-env').data, FLINT_HOST: '0.0.0.0', FLINT_API_KEYS: 'k', FLINT_METRICS_TOKEN: 't' };
    return loadConfig({ flags: { config: path.join(dir, 'flint.yaml') }, env }).config;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the Services, the disruption budget and the ServiceMonitor select the pods; the headless Service governs the StatefulSet', () => {
  const sts = find(base, 'StatefulSet', 'flint');
  const podLabels = sts.spec.template.metadata.labels as Record<string, string>;
  const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
  const headless = find(base, 'Service', 'flint-headless');
  const client = find(base, 'Service', 'flint');
  assert.equal(sts.spec.serviceName, 'flint-headless');
  assert.equal(headless.spec.clusterIP, 'None');
  assert.equal(headless.spec.publishNotReadyAddresses, true, 'draining pods stay listed for scraping');
  assert.notEqual(client.spec.publishNotReadyAddresses, true, 'clients reach ready pods only');
  for (const service of [headless, client]) {
    assert.ok(selects(service.spec.selector, podLabels), service.metadata.name);
    assert.deepEqual(service.spec.ports, [{ name: 'http', port: defaults.server.port, targetPort: 'http' }]);
  }
  const pdb = find(base, 'PodDisruptionBudget', 'flint');
  assert.ok(selects(pdb.spec.selector.matchLabels, podLabels));
  assert.equal(pdb.spec.maxUnavailable, 1);
  const monitor = find(monitored, 'ServiceMonitor', 'flint');
  const scraped = [headless, client].filter((s) => selects(monitor.spec.selector.matchLabels, s.metadata.labels));
  assert.deepEqual(scraped.map((s) => s.metadata.name), ['flint-headless'], 'each pod is scraped once, draining ones too');
  assert.deepEqual(monitor.spec.endpoints.map((e: any) => [e.port, e.path, e.authorization.credentials]), [['http', '/metrics', { name: 'flint-secrets', key: 'metrics-token' }]]);
});

test('Envoy Gateway: a WebSocket rule, consistent hashing on the session key Flint reads, health checks on /ready', () => {
  const route = find(envoy, 'HTTPRoute', 'flint');
  const gateway = find(envoy, 'Gateway', 'flint');
  assert.deepEqual(route.spec.parentRefs, [{ name: gateway.metadata.name, sectionName: gateway.spec.listeners[0].name }]);
  const rules = new Map<string, any>(route.spec.rules.map((r: any) => [r.name, r]));
  assert.deepEqual([...rules.keys()], ['websocket-query', 'websocket', 'api']);
  for (const rule of rules.values()) assert.deepEqual(rule.backendRefs, [{ name: 'flint', port: defaults.server.port }]);
  for (const name of ['websocket', 'websocket-query']) {
    const [match] = rules.get(name).matches;
    assert.deepEqual([match.path, match.method, match.headers[0].name.toLowerCase()], [{ type: 'Exact', value: '/v1/responses' }, 'GET', 'upgrade']);
    assert.equal(rules.get(name).timeouts.request, '0s', `${name}: a WebSocket outlives any request timeout`);
  }
  assert.deepEqual(rules.get('websocket-query').matches[0].queryParams.map((q: any) => q.name), ['session']);
  assert.ok(Number(/^(\d+)s$/.exec(rules.get('api').timeouts.request)![1]) * 1000 > defaults.server.requestTimeoutMs, 'streams are not cut before Flint\u2019s own deadline');

  const [routePolicy, queryPolicy] = ['flint', 'flint-session-query'].map((name) => find(envoy, 'BackendTrafficPolicy', name));
  assert.deepEqual(routePolicy.spec.targetRefs, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'flint' }]);
  assert.deepEqual(queryPolicy.spec.targetRefs, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'flint', sectionName: 'websocket-query' }]);
  // Hashed on the headers Flint names a session by, in its order; the query rule on ?session=.
  assert.deepEqual(routePolicy.spec.loadBalancer.consistentHash.headers.map((h: any) => h.name), defaults.websocket.sessionHeaders);
  assert.deepEqual(queryPolicy.spec.loadBalancer.consistentHash.queryParams, [{ name: 'session' }]);
  // A rule's policy replaces the route's: the two agree on everything but the hash key.
  const { loadBalancer: _a, targetRefs: _b, ...routeRest } = routePolicy.spec;
  const { loadBalancer: _c, targetRefs: _d, ...queryRest } = queryPolicy.spec;
  assert.deepEqual(queryRest, routeRest);
  assert.equal(routePolicy.spec.healthCheck.active.http.path, '/ready');
  assert.deepEqual(routePolicy.spec.healthCheck.active.http.expectedStatuses, [200]);
  assert.deepEqual(routePolicy.spec.retry.retryOn.triggers, ['connect-failure', 'reset-before-request'], 'only what never reached Flint is retried');
  // session_id has an underscore, which Envoy Gateway refuses unless told otherwise.
  const client = find(envoy, 'ClientTrafficPolicy', 'flint');
  assert.ok(defaults.websocket.sessionHeaders.some((h) => h.includes('_')));
  assert.equal(client.spec.headers.withUnderscoresAction, 'Allow');
  assert.deepEqual(client.spec.targetRefs, [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'flint' }]);
});

test('front + llama-server pool: the front runs no model and lists every pool pod by its stable name, with the slots and context each serves', () => {
  for (const o of pool.filter(hasTypes)) {
    const Model = models[`${o.apiVersion} ${o.kind}`];
    assert.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`);
  }
  assert.deepEqual(typeErrors(pool.filter(hasTypes)), []);
  // The front: Flint's own pod, without a model or --pull.
  const front = find(pool, 'StatefulSet', 'flint').spec.template.spec.containers[0];
  assert.deepEqual(front.args, ['serve']);
  const config = loadClusterConfig(pool);
  assert.equal(config.engine.workers, 0);
  assert.equal(config.model.alias.length > 0, true, 'clients get a model name without asking a member');
  // The pool: every upstream is one llama-server pod, addressed through the headless Service.
  const sts = find(pool, 'StatefulSet', 'llama-server');
  const service = find(pool, 'Service', 'llama-server');
  const [server] = sts.spec.template.spec.containers;
  const arg = (flag: string) => server.args[server.args.indexOf(flag) + 1] as string;
  assert.equal(sts.spec.serviceName, service.metadata.name);
  assert.equal(service.spec.clusterIP, 'None');
  assert.deepEqual(service.spec.selector, sts.spec.template.metadata.labels);
  assert.deepEqual(sts.spec.selector.matchLabels, sts.spec.template.metadata.labels);
  const port = server.ports.find((p: any) => p.name === 'http').containerPort;
  assert.equal(arg('--port'), String(port));
  const names = Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`);
  assert.deepEqual(config.upstreams.map((u) => [u.name, u.url, u.kind]), names.map((n) => [n, `http://${n}.${service.metadata.name}:${port}`, 'llama-server']));
  for (const upstream of config.upstreams) assert.equal(upstream.slots, Number(arg('--parallel')), 'the front runs as many requests on a member as it has slots');
  assert.ok(config.model.contextSize * Number(arg('--parallel')) <= Number(arg('--ctx-size')), 'the front\u2019s context fits a member slot');
  for (const probe of [server.startupProbe, server.livenessProbe]) assert.deepEqual(probe.httpGet, { path: healthPaths['llama-server'], port: 'http' });
  assert.equal(server.volumeMounts[0].mountPath, server.env.find((e: any) => e.name === 'LLAMA_CACHE').value, 'downloaded models stay on the volume');
});

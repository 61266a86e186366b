import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as a manifest states it. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string>; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

/** The kustomization keys `renderKustomization` understands; a file that uses any other is refused. */
const supportedKeys = new Set(['apiVersion', 'kind', 'resources', 'components']);

/**
 * The objects `kubectl kustomize <dir>` builds, for kustomizations that only list resources and
 * components (files, or folders with a kustomization of their own), which is all that
 * deploy/k8s uses: no transformers, generators or patches, so nothing is rewritten. A
 * kustomization that uses more is refused rather than rendered wrong.
 */
export function renderKustomization(dir: string, extraComponents: readonly string[] = []): Manifest[] {
  const file = path.join(dir, 'kustomization.yaml');
  const kustomization = readYaml(file)[0] as { kind?: string; resources?: string[]; components?: string[] };
  const unsupported = Object.keys(kustomization).filter((key) => !supportedKeys.has(key));
  if (unsupported.length > 0) throw new Error(`${file}: ${unsupported.join(', ')} not supported by this renderer`);
  const objects: Manifest[] = [];
  for (const entry of kustomization.resources ?? []) {
    const target = path.resolve(dir, entry);
    objects.push(...(statSync(target).isDirectory() ? renderKustomization(target) : (readYaml(target) as Manifest[])));
  }
  for (const entry of [...(kustomization.components ?? []), ...extraComponents]) objects.push(...renderKustomization(path.resolve(dir, entry)));
  const seen = new Set<string>();
  for (const o of objects) {
    const id = `${o.apiVersion} ${o.kind} ${o.metadata.name}`;
    if (seen.has(id)) throw new Error(`${dir}: ${id} twice`);
    seen.add(id);
  }
  return objects;
}

/** `kubectl kustomize <dir>` when kubectl is installed, else undefined. */
export function kubectlKustomize(dir: string): Manifest[] | undefined {
  const run = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (run.error) return undefined;
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${run.stderr}`);
  return parseAllDocuments(run.stdout).map((d) => d.toJS() as Manifest);
}

function readYaml(file: string): unknown[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of documents) if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0].message}`);
  return documents.map((d) => d.toJS()).filter((o) => o !== null);
}

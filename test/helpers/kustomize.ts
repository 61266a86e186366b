import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { parse as parseYamlText, parseAllDocuments } from 'yaml';

/** A Kubernetes object as a manifest states it. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string>; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

/** The kustomization keys `renderKustomization` understands; a file that uses any other is refused. */
const supportedKeys = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches']);

/** A `patches` entry as the renderer takes it: a JSON 6902 patch (YAML list of operations) for one object. */
interface PatchEntry {
  readonly target: { readonly kind: string; readonly name: string };
  readonly patch: string;
}

/**
 * The objects `kubectl kustomize <dir>` builds, for kustomizations that list resources and
 * components (files, or folders with a kustomization of their own) and JSON 6902 `patches` that
 * name their target by kind and name, which is all that deploy/k8s uses: no transformers or
 * generators. A kustomization that uses more is refused rather than rendered wrong.
 */
export function renderKustomization(dir: string, extraComponents: readonly string[] = []): Manifest[] {
  const file = path.join(dir, 'kustomization.yaml');
  const kustomization = readYaml(file)[0] as { kind?: string; resources?: string[]; components?: string[]; patches?: PatchEntry[] };
  const unsupported = Object.keys(kustomization).filter((key) => !supportedKeys.has(key));
  if (unsupported.length > 0) throw new Error(`${file}: ${unsupported.join(', ')} not supported by this renderer`);
  const objects: Manifest[] = [];
  for (const entry of kustomization.resources ?? []) {
    const target = path.resolve(dir, entry);
    objects.push(...(statSync(target).isDirectory() ? renderKustomization(target) : (readYaml(target) as Manifest[])));
  }
  for (const entry of [...(kustomization.components ?? []), ...extraComponents]) objects.push(...renderKustomization(path.resolve(dir, entry)));
  for (const entry of kustomization.patches ?? []) {
    const keys = Object.keys(entry.target ?? {}).sort().join(',');
    if (keys !== 'kind,name' || typeof entry.patch !== 'string') throw new Error(`${file}: only patches with target {kind, name} and an inline JSON 6902 patch are supported`);
    const at = objects.findIndex((o) => o.kind === entry.target.kind && o.metadata.name === entry.target.name);
    if (at === -1) throw new Error(`${file}: no ${entry.target.kind} ${entry.target.name} to patch`);
    // Throws on an operation that does not apply (a path that is not there), as kustomize does.
    objects[at] = fastJsonPatch.applyPatch(structuredClone(objects[at]), parseYamlText(entry.patch) as Operation[], true, false).newDocument;
  }
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

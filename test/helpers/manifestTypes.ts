import path from 'node:path';
import ts from 'typescript';
import type { Manifest } from './kustomize.js';
import { repoRoot } from './testModel.js';

/** Where the type of each kind lives: the module of the kubernetes-models packages and its interface. */
const types: Record<string, readonly [module: string, name: string]> = {
  'v1 ConfigMap': ['kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  'v1 Service': ['kubernetes-models/v1/Service', 'IService'],
  'apps/v1 StatefulSet': ['kubernetes-models/apps/v1/StatefulSet', 'IStatefulSet'],
  'policy/v1 PodDisruptionBudget': ['kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'],
  'monitoring.coreos.com/v1 ServiceMonitor': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'],
  'gateway.networking.k8s.io/v1 Gateway': ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway', 'IGateway'],
  'gateway.networking.k8s.io/v1 HTTPRoute': ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute', 'IHTTPRoute'],
};

/** Whether `typeErrors` knows the kind. */
export function hasTypes(manifest: Manifest): boolean {
  return `${manifest.apiVersion} ${manifest.kind}` in types;
}

/**
 * The TypeScript errors of the manifests written as object literals of their kubernetes-models
 * interfaces. The packages' own validators check types, formats and required fields but let
 * unknown fields through (as the API server's pruning would, silently); TypeScript's excess
 * property check catches those, at every depth: a misspelt `readinessProbe` field, say.
 */
export function typeErrors(manifests: readonly Manifest[]): string[] {
  const file = path.join(repoRoot, 'test', 'deploy', '__manifests__.ts');
  const lines: string[] = [];
  manifests.forEach((m, i) => {
    const [module, name] = types[`${m.apiVersion} ${m.kind}`];
    lines.push(`import type { ${name} as T${i} } from '${module}';`, `export const m${i}: T${i} = ${JSON.stringify(m)};`);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (path.resolve(name) === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const index = where ? Math.floor(where.line / 2) : -1;
    const m = manifests[index];
    return `${m ? `${m.kind} ${m.metadata.name}` : '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { FlintError } from '../errors/FlintError.js';
import { ConfigSchema, type Config } from './schema.js';

/** Command-line flags that override everything else. */
export interface ConfigFlags {
  config?: string;
  model?: string;
  host?: string;
  port?: string | number;
  logFormat?: string;
}

/** Where configuration comes from; `env` defaults to `process.env`, `cwd` to `process.cwd()`. */
export interface ConfigSources {
  flags?: ConfigFlags;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The committed defaults file used when neither `--config` nor FLINT_CONFIG names one. */
  defaultFile?: string;
}

/** The loaded config and the file it came from (if any). */
export interface LoadedConfig {
  config: Config;
  file: string | undefined;
}

/** Environment variables and the config keys they set; a later row wins over an earlier one. */
export const envVariables: ReadonlyArray<readonly [name: string, keyPath: readonly string[], kind: 'string' | 'int' | 'list']> = [
  ['FLINT_HOST', ['server', 'host'], 'string'],
  ['FLINT_PORT', ['server', 'port'], 'int'],
  ['FLINT_API_KEYS', ['server', 'apiKeys'], 'list'],
  ['FLINT_FRONT_KEYS', ['server', 'frontKeys'], 'list'],
  ['FLINT_MODEL', ['model', 'path'], 'string'],
  ['FLINT_CONTEXT_SIZE', ['model', 'contextSize'], 'int'],
  ['FLINT_WORKERS', ['engine', 'workers'], 'int'],
  ['FLINT_BACKEND', ['engine', 'backend'], 'string'],
  ['FLINT_LLAMA_SERVER', ['engine', 'llamaServer', 'path'], 'string'],
  ['FLINT_SLOTS', ['engine', 'slots'], 'int'],
  ['FLINT_THREADS', ['engine', 'threads'], 'int'],
  ['FLINT_BATCH_THREADS', ['engine', 'batchThreads'], 'int'],
  ['FLINT_GPU', ['engine', 'gpu'], 'string'],
  ['FLINT_LOG_LEVEL', ['logging', 'level'], 'string'],
  ['FLINT_DATA_DIR', ['dataDir'], 'string'],
  ['FLINT_DISK_CACHE_BYTES', ['engine', 'diskCacheBytes'], 'int'],
  ['FLINT_METRICS_TOKEN', ['metrics', 'token'], 'string'],
  ['FLINT_LOG_FORMAT', ['logging', 'format'], 'string'],
  // Hugging Face's own variables, as huggingface_hub and llama.cpp read them; FLINT_HF_ENDPOINT wins.
  ['HF_ENDPOINT', ['download', 'hfEndpoint'], 'string'],
  ['FLINT_HF_ENDPOINT', ['download', 'hfEndpoint'], 'string'],
  ['HF_TOKEN', ['download', 'hfToken'], 'string'],
];

/**
 * Builds the one Config: schema defaults < config file < FLINT_* environment < CLI flags.
 * The only reader of process.env. Reports every problem at once and returns a deep-frozen object.
 */
/** Whether `host` binds only the loopback interface. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function loadConfig(sources: ConfigSources = {}): LoadedConfig {
  const env = sources.env ?? process.env;
  const cwd = sources.cwd ?? process.cwd();
  const flags = sources.flags ?? {};
  const problems: string[] = [];

  const explicitFile = flags.config ?? nonEmpty(env.FLINT_CONFIG);
  const file = explicitFile ? path.resolve(cwd, explicitFile) : sources.defaultFile;
  let raw: Record<string, unknown> = {};
  if (file && (explicitFile || existsSync(file))) raw = readConfigFile(file, problems);

  for (const [name, keyPath, kind] of envVariables) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, keyPath, coerce(value, kind, name, problems));
  }
  if (flags.host !== undefined) setPath(raw, ['server', 'host'], flags.host);
  if (flags.port !== undefined) setPath(raw, ['server', 'port'], coerce(String(flags.port), 'int', '--port', problems));
  if (flags.model !== undefined) setPath(raw, ['model', 'path'], flags.model);
  if (flags.logFormat !== undefined) setPath(raw, ['logging', 'format'], flags.logFormat);

  const withDefaults = Value.Default(ConfigSchema, structuredClone(raw)) as Record<string, unknown>;
  for (const error of Value.Errors(ConfigSchema, withDefaults)) {
    problems.push(describe(error.path, error.message, error.schema, error.value));
  }
  const server = withDefaults.server as Config['server'] | undefined;
  if (server && problems.length === 0 && !server.allowUnauthenticatedRemote && server.apiKeys.length === 0 && server.frontKeys.length === 0 && !isLoopback(server.host)) {
    problems.push(
      `server.host: '${server.host}' is reachable from other machines but server.apiKeys is empty. Set FLINT_API_KEYS, bind 127.0.0.1, or set server.allowUnauthenticatedRemote: true if a proxy in front authenticates.`,
    );
  }
  const engine = withDefaults.engine as Config['engine'] | undefined;
  const upstreams = withDefaults.upstreams as Config['upstreams'] | undefined;
  if (engine && Array.isArray(upstreams)) {
    if (engine.workers === 0 && upstreams.length === 0) problems.push('engine.workers: 0 local workers needs at least one entry in upstreams (remote engines to serve from)');
    const names = upstreams.map((u) => u.name);
    for (const name of new Set(names.filter((n, i) => names.indexOf(n) !== i))) problems.push(`upstreams: the name '${name}' is used twice`);
    for (const u of upstreams) {
      if (u.render !== 'front') continue;
      if (u.kind !== 'llama-server' && u.kind !== 'vllm' && u.kind !== 'ollama') problems.push(`upstreams: '${u.name}' has render: front, which llama-server, vllm and ollama members take (kind: ${u.kind})`);
      const modelPath = (withDefaults.model as Config['model'] | undefined)?.path ?? '';
      if (modelPath === '') problems.push(`upstreams: '${u.name}' has render: front, which needs model.path (FLINT_MODEL): a GGUF of the member's model, for its tokenizer and chat template`);
    }
  }
  if (engine?.backend === 'llama-server' && engine.workers > 0 && engine.llamaServer?.path === '') {
    problems.push("engine.backend: 'llama-server' needs the binary: set engine.llamaServer.path or FLINT_LLAMA_SERVER (build it with 'npm run build:llama-server')");
  }
  if (problems.length > 0) {
    throw new FlintError('FLINT_ERR_CONFIG', { details: { detail: '\n  - ' + [...new Set(problems)].join('\n  - ') } });
  }
  const config = deepFreeze(withDefaults as Config);
  return { config, file: file && existsSync(file) ? file : undefined };
}

/** Copy of the config safe to log: keys and secrets are masked. */
export function redactConfig(config: Config): unknown {
  return {
    ...config,
    server: { ...config.server, apiKeys: config.server.apiKeys.map(() => '***'), frontKeys: config.server.frontKeys.map(() => '***') },
    metrics: { ...config.metrics, token: config.metrics.token ? '***' : '' },
    download: { ...config.download, hfToken: config.download.hfToken ? '***' : '' },
    upstreams: config.upstreams.map((u) => ({ ...u, key: u.key ? '***' : '' })),
  };
}

function readConfigFile(file: string, problems: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`config file ${file}: cannot be read (${(err as Error).message})`);
    return {};
  }
  try {
    const parsed: unknown = parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`config file ${file}: must contain a mapping of sections`);
      return {};
    }
    return parsed as Record<string, unknown>;
  } catch (err) {
    problems.push(`config file ${file}: not valid YAML (${(err as Error).message})`);
    return {};
  }
}

function coerce(value: string, kind: 'string' | 'int' | 'list', name: string, problems: string[]): unknown {
  if (kind === 'string') return value;
  if (kind === 'list') return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (!/^-?\d+$/.test(value.trim())) {
    problems.push(`${name}: '${value}' is not an integer`);
    return undefined;
  }
  return Number(value);
}

function setPath(target: Record<string, unknown>, keyPath: readonly string[], value: unknown): void {
  if (value === undefined) return;
  let node = target;
  for (const key of keyPath.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keyPath[keyPath.length - 1]] = value;
}

function describe(pointer: string, message: string, schema: TSchema, value: unknown): string {
  const key = pointer.replace(/^\//, '').replaceAll('/', '.') || '(root)';
  const allowed = allowedValues(schema);
  const got = value === undefined ? '' : ` (got ${JSON.stringify(value)})`;
  if (message.startsWith('Unexpected property')) return `${key}: unknown key`;
  return `${key}: ${message}${got}${allowed ? `; allowed: ${allowed}` : ''}`;
}

function allowedValues(schema: TSchema): string | undefined {
  if (Array.isArray(schema.anyOf)) {
    const consts = (schema.anyOf as TSchema[]).map((s) => s.const).filter((c) => c !== undefined);
    if (consts.length > 0) return consts.map((c) => JSON.stringify(c)).join(', ');
  }
  const range: string[] = [];
  if (typeof schema.minimum === 'number') range.push(`>= ${schema.minimum}`);
  if (typeof schema.maximum === 'number') range.push(`<= ${schema.maximum}`);
  if (range.length > 0) return `${schema.type ?? 'number'} ${range.join(' and ')}`;
  return schema.type ? String(schema.type) : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

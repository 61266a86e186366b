/**
 * Runs the real Codex CLI (`codex exec`) against a local Flint through the logging proxy:
 * a throwaway CODEX_HOME with a `flint` model provider, a throwaway working directory, no
 * approvals (exec runs with approval policy `never` and a read-only sandbox), and outbound
 * traffic other than loopback pointed at a dead proxy port.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { clientsDir, runProcess, tempDir, type ProcessRun } from './support.js';

/** The musl binary of @openai/codex-linux-x64, else the npm launcher. */
export function codexExecutable(): string {
  const triples: Record<string, string> = { 'linux-x64': 'x86_64-unknown-linux-musl', 'linux-arm64': 'aarch64-unknown-linux-musl' };
  const triple = triples[`${process.platform}-${process.arch}`];
  if (triple) {
    const native = path.join(clientsDir, 'node_modules', '@openai', `codex-${process.platform}-${process.arch}`, 'vendor', triple, 'bin', 'codex');
    if (existsSync(native)) return native;
  }
  return path.join(clientsDir, 'node_modules', '.bin', 'codex');
}

/** One `codex exec` process: exit status, JSONL events and stderr. */
export interface CodexRun extends ProcessRun {
  readonly events: Array<{ type: string; [key: string]: unknown }>;
}

/** A Codex home and workspace configured for one Flint provider. */
export class CodexSession {
  readonly home = tempDir('codex-home-');
  readonly work = tempDir('codex-work-');
  readonly schemaFile: string;

  /** Set when Codex talks to Flint as its built-in OpenAI provider (server compaction). */
  readonly #isOpenAiProvider: boolean;

  /**
   * `baseUrl` is the provider's `base_url` (ending in /v1). `websockets` sets
   * `supports_websockets`, so Codex uses the Responses WebSocket mode. `compactAfterTokens`
   * configures Codex as for OpenAI itself (`openai_base_url` pointed at Flint), which is when it
   * uses server compaction, with auto-compaction once a conversation passes that many tokens.
   */
  constructor(baseUrl: string, model: string, websockets: boolean, compactAfterTokens?: number) {
    this.#isOpenAiProvider = compactAfterTokens !== undefined;
    // Flint's tiny model has random weights: left free it never emits EOS, and a response cut
    // by a token cap is `incomplete`, which Codex reports as a failed turn. `--output-schema`
    // (json_schema, which Flint enforces with a grammar) makes every answer end by itself.
    this.schemaFile = path.join(this.home, 'answer.schema.json');
    writeFileSync(this.schemaFile, JSON.stringify({ type: 'object', properties: { answer: { type: 'string', enum: ['hi'] } }, required: ['answer'], additionalProperties: false }));
    mkdirSync(this.work, { recursive: true });
    const openAiProvider = [
      `model = ${JSON.stringify(model)}`,
      `openai_base_url = ${JSON.stringify(baseUrl)}`,
      'check_for_update_on_startup = false',
      `model_auto_compact_token_limit = ${compactAfterTokens}`,
      // Codex knows no context window for Flint's model names; without one it counts every turn as out of room.
      'model_context_window = 32768',
      '',
      '[features]',
      'plugins = false',
      '',
    ];
    writeFileSync(
      path.join(this.home, 'config.toml'),
      this.#isOpenAiProvider ? openAiProvider.join('\n') : [
        `model = ${JSON.stringify(model)}`,
        'model_provider = "flint"',
        'check_for_update_on_startup = false',
        '',
        '[model_providers.flint]',
        'name = "Flint"',
        `base_url = ${JSON.stringify(baseUrl)}`,
        'wire_api = "responses"',
        `supports_websockets = ${websockets}`,
        // A failed request fails the turn at once instead of retrying for minutes.
        'request_max_retries = 0',
        'stream_max_retries = 0',
        '',
        '[features]',
        // Plugin sync reaches github.com and chatgpt.com at start-up; nothing else here needs the network.
        'plugins = false',
        '',
      ].join('\n'),
    );
  }

  /** `codex exec` for a first turn, or `codex exec resume --last` to continue the session. */
  async run(prompt: string, { resume = false, timeoutMs = 120_000 } = {}): Promise<CodexRun> {
    const args: string[] = resume
      ? ['exec', 'resume', '--last', '--skip-git-repo-check', '--strict-config', '--json', '--output-schema', this.schemaFile, prompt]
      : ['exec', '--skip-git-repo-check', '--strict-config', '--json', '--output-schema', this.schemaFile, '-C', this.work, prompt];
    // FLINT_CLIENTS_CODEX_ARGS: extra `codex exec` options, e.g. `--disable multi_agent -c web_search="disabled"` to bisect a failure.
    const extra = process.env.FLINT_CLIENTS_CODEX_ARGS?.split(/\s+/).filter(Boolean) ?? [];
    args.splice(resume ? 2 : 1, 0, ...extra);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(OPENAI_|CODEX_|FLINT_)/.test(k) && !/_proxy$/i.test(k)) env[k] = v;
    Object.assign(env, {
      CODEX_HOME: this.home,
      NO_COLOR: '1',
      // Anything that is not loopback goes to a closed port: Flint is the only server Codex reaches.
      HTTPS_PROXY: 'http://127.0.0.1:9',
      HTTP_PROXY: 'http://127.0.0.1:9',
      ALL_PROXY: 'http://127.0.0.1:9',
      NO_PROXY: '127.0.0.1,localhost',
      // The built-in OpenAI provider wants a key; Flint without FLINT_API_KEYS accepts any.
      ...(this.#isOpenAiProvider ? { CODEX_API_KEY: 'unused' } : {}),
    });
    const run = await runProcess(codexExecutable(), args, { cwd: this.work, env, timeoutMs });
    const events = run.stdout
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as CodexRun['events'][number];
        } catch {
          return { type: '(unparsed)', line: l };
        }
      });
    return { ...run, events };
  }

  cleanup(): void {
    rmSync(this.home, { recursive: true, force: true });
    rmSync(this.work, { recursive: true, force: true });
  }
}

/** A short account of a Codex run for assertion messages. */
export function describeRun(run: CodexRun): string {
  const interesting = run.events.filter((e) => e.type !== 'item.completed' || (e.item as { type?: string } | undefined)?.type !== 'agent_message');
  return `exit=${run.code ?? run.signal} after ${run.ms} ms; events=${JSON.stringify(interesting).slice(0, 3000)}; stderr tail=${run.stderr.split('\n').filter((l) => !l.includes('Unknown model')).join('\n').slice(-2000)}`;
}

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from './testModel.js';

/** The `flint` executable of this checkout. */
export const flintBin = path.join(repoRoot, 'bin', 'flint.js');

/**
 * Environment without any FLINT_* variable of the calling shell, plus test-friendly settings; the
 * disk prompt cache is off (config/flint.yaml turns it on) unless a test sets FLINT_DISK_CACHE_BYTES.
 */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLINT_')) env[k] = v;
  return { ...env, FLINT_THREADS: '1', FLINT_BATCH_THREADS: '1', FLINT_CONTEXT_SIZE: '512', FLINT_DISK_CACHE_BYTES: '0', ...extra };
}

/** A `flint serve` child process and the URL it printed. */
export interface SpawnedServer {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything written to stderr so far. */
  stderr(): string;
}

/** Runs `flint serve --port 0` as a separate process and waits for its URL. */
export async function spawnServer(args: string[], env: Record<string, string>): Promise<SpawnedServer> {
  const child = spawn(process.execPath, [flintBin, 'serve', '--port', '0', '--host', '127.0.0.1', ...args], {
    cwd: repoRoot,
    env: cleanEnv({ FLINT_LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  for await (const line of createInterface({ input: child.stdout! })) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
    if (match) return { child, url: match[1], stderr: () => stderr };
  }
  throw new Error(`flint serve exited without printing its URL; stderr: ${stderr}`);
}

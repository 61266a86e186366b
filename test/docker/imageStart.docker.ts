import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { parseDockerfile } from '../helpers/dockerfile.js';
import { repoRoot } from '../helpers/testModel.js';

// `npm run test:docker`: the CPU image's start command, run the way the image runs it, from a
// production-only install (`npm ci --omit=dev`) of exactly the files the Dockerfile copies. No
// Docker engine is needed. Slow (the install compiles better-sqlite3), so it is not part of `npm test`.

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'flint-image-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the image start command serves /ready from a production-only install, and its HEALTHCHECK passes', { timeout: 900_000 }, async () => {
  const image = parseDockerfile(path.join(repoRoot, 'docker', 'Dockerfile'));
  const final = image.stages[image.stages.length - 1];
  const app = path.join(dir, 'app');
  mkdirSync(app);
  for (const source of final.copies) cpSync(path.join(repoRoot, source), path.join(app, source), { recursive: true });
  await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { cwd: app, timeout: 840_000, maxBuffer: 64 * 1024 * 1024 });
  assert.ok(!existsSync(path.join(app, 'node_modules', 'openai')), 'no devDependencies (openai is one)');
  assert.ok(existsSync(path.join(app, 'node_modules', 'tsx')), 'tsx, the runtime loader, is a production dependency');

  // The image's environment, but on loopback and a free port (tests bind 127.0.0.1 only).
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, ...final.env, FLINT_HOST: '127.0.0.1', FLINT_PORT: '0', FLINT_DATA_DIR: path.join(dir, 'data'), FLINT_THREADS: '1', FLINT_BATCH_THREADS: '1', FLINT_CONTEXT_SIZE: '512' };
  const [command, ...args] = [...final.entrypoint, ...final.cmd];
  const child = spawn(command === 'node' ? process.execPath : command, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    let url: string | undefined;
    for await (const line of createInterface({ input: child.stdout! })) {
      url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1];
      if (url) break;
    }
    assert.ok(url, `the start command printed its URL; stderr: ${stderr}`);
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    const check = /CMD\s+(\[.*\])$/.exec(final.healthcheck ?? '')?.[1];
    const [checkCommand, ...checkArgs] = JSON.parse(check ?? '[]') as string[];
    assert.equal(checkCommand, 'node');
    await run(process.execPath, checkArgs, { cwd: app, env: { ...env, FLINT_PORT: new URL(url).port }, timeout: 10_000 });
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    clearTimeout(guard);
  }
});

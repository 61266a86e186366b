import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { createPullOptions } from '../../src/modelfiles/createPullOptions.js';
import { formatModelList, listLocalModels } from '../../src/modelfiles/listLocalModels.js';
import { loadCatalog } from '../../src/modelfiles/loadCatalog.js';
import { pullModel } from '../../src/modelfiles/pullModel.js';
import { readGgufFacts } from '../../src/modelfiles/readGgufFacts.js';
import { resolveModelFile } from '../../src/modelfiles/resolveModelFile.js';
import { synthesizeModel } from '../../src/synth/synthesizeModel.js';
import { LoopbackHub } from '../helpers/loopbackHub.js';
import { cleanEnv, flintBin } from '../helpers/spawnServer.js';
import { repoRoot, tinyModelPath } from '../helpers/testModel.js';

// `flint pull` end to end: the CLI in its own process, node-llama-cpp's downloader, and a hub on
// 127.0.0.1 that answers the URL shapes Hugging Face does. Nothing here reaches the internet.

const dir = mkdtempSync(path.join(tmpdir(), 'flint-pull-'));
let hub: LoopbackHub;
let tiny: Buffer;
let small: Buffer;
let splitParts: Buffer[];
const sha: Record<string, string> = {};
const children = new Set<ChildProcess>();

before(async () => {
  hub = await LoopbackHub.start();
  tiny = readFileSync(await tinyModelPath());
  small = readFileSync((await synthesizeModel({ preset: 'small', outPath: path.join(dir, 'source', 'small.gguf') })).path);
  const split = await synthesizeModel({ preset: 'tiny', outPath: path.join(dir, 'source', 'tiny-split.gguf'), splitParts: 3 });
  splitParts = split.parts.map((p) => readFileSync(p));
  sha.tiny = hub.addFile('flint-test/Tiny-GGUF', 'tiny-f32.gguf', tiny);
  hub.addManifest('flint-test/Tiny-GGUF', 'F32', 'tiny-f32.gguf');
  hub.addFile('flint-test/Small-GGUF', 'small-f16.gguf', small);
  splitParts.forEach((data, i) => (sha[`split${i + 1}`] = hub.addFile('flint-test/Split-GGUF', `tiny-split-0000${i + 1}-of-00003.gguf`, data)));
  hub.addFile('flint-test/Broken-GGUF', 'error-page.gguf', Buffer.from('<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>\n'.repeat(40)));
  hub.addFile('flint-test/Broken-GGUF', 'truncated.gguf', tiny.subarray(0, 4096));
  hub.addFile('flint-test/Other-GGUF', 'other-f32.gguf', tiny);
  hub.addFile('flint-test/Changed-GGUF', 'changed-f32.gguf', tiny, { statedSha256: 'f'.repeat(64) });
  hub.addFile('flint-test/Gated-GGUF', 'gated-f32.gguf', tiny, { token: 'hf_loopback_token' });
  writeFileSync(
    path.join(dir, 'catalog.yaml'),
    [
      'models:',
      catalogEntry('test-tiny', 'hf:flint-test/Tiny-GGUF/tiny-f32.gguf', [['tiny-f32.gguf', tiny.length, sha.tiny]]),
      catalogEntry('test-split', 'hf:flint-test/Split-GGUF/tiny-split-00001-of-00003.gguf', splitParts.map((p, i) => [`tiny-split-0000${i + 1}-of-00003.gguf`, p.length, sha[`split${i + 1}`]])),
      catalogEntry('test-wrong-sha', 'hf:flint-test/Other-GGUF/other-f32.gguf', [['other-f32.gguf', tiny.length, '0'.repeat(64)]]),
    ].join('\n'),
  );
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

function catalogEntry(name: string, source: string, files: Array<[string, number, string]>): string {
  return [
    `  - name: ${name}`,
    `    title: ${name}`,
    `    source: ${source}`,
    '    files:',
    ...files.map(([file, size, hash]) => `      - { name: ${file}, sizeBytes: ${size}, sha256: "${hash}" }`),
    '    quantization: F32',
    '    parameters: 1M',
    '    contextLength: 4096',
    '    chatTemplate: chatml',
    '    fim: true',
    '    thinking: false',
    '    tier: cpu',
  ].join('\n');
}

/** A models folder and config of its own for one test. */
function workspace(name: string): { config: string; models: string } {
  const root = path.join(dir, name);
  mkdirSync(root, { recursive: true });
  const config = path.join(root, 'flint.yaml');
  const models = path.join(root, 'models');
  writeFileSync(config, `model:\n  dir: ${JSON.stringify(models)}\n  catalog: ${JSON.stringify(path.join(dir, 'catalog.yaml'))}\ndownload:\n  progressIntervalMs: 200\n`);
  return { config, models };
}

function flintEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = cleanEnv({ FLINT_HF_ENDPOINT: hub.url, ...extra });
  for (const name of ['HF_ENDPOINT', 'MODEL_ENDPOINT', 'HF_TOKEN', 'HF_HOME', 'HF_TOKEN_PATH']) if (!(name in extra)) delete env[name];
  env.HF_HOME = path.join(dir, 'hf-home'); // no token file of the machine's user
  return env;
}

interface Run {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function startFlint(args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, [flintBin, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = once(child, 'exit').then(([code]) => {
    clearTimeout(timer);
    children.delete(child);
    return { code: code as number | null, stdout, stderr };
  });
  return { child, done };
}

function runFlint(args: string[], env: NodeJS.ProcessEnv = flintEnv()) {
  return startFlint(args, env).done;
}

/** `flint pull` in this process (the variants of a scenario the CLI already ran); resolves to its output, or rejects. */
async function pullHere(spec: string, models: string, hfToken = ''): Promise<string> {
  const lines: string[] = [];
  const output = { isTTY: false, columns: 80, write: (text: string) => lines.push(text) } as unknown as NodeJS.WriteStream;
  const options = createPullOptions({ hfEndpoint: hub.url, hfToken, progressIntervalMs: 200 }, output);
  await pullModel(spec, { ...options, modelsDir: models, catalog: loadCatalog(path.join(dir, 'catalog.yaml')) });
  return lines.join('');
}

async function modelList(models: string): Promise<string> {
  return formatModelList(models, await listLocalModels(models), loadCatalog(path.join(dir, 'catalog.yaml')));
}

/** The .gguf files in a folder, and what is left in its staging folder. */
function contents(models: string): { gguf: string[]; partial: string[] } {
  const list = (d: string) => (existsSync(d) ? readdirSync(d).filter((f) => !f.startsWith('.')).sort() : []);
  return { gguf: list(models).filter((f) => f.endsWith('.gguf')), partial: list(path.join(models, '.partial')) };
}

test('full download: a catalog model comes through the resolve redirect, is checked against its SHA-256 and lands in models/; pulling again stays offline', async () => {
  const ws = workspace('full');
  const first = hub.requests.length;
  const run = await runFlint(['pull', 'test-tiny', '--config', ws.config]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /model ready: .*tiny-f32\.gguf \(downloaded, SHA-256 matches the catalog\)/);
  assert.match(run.stderr, /tiny-f32\.gguf: +\d+\.\d% +[\d.]+ [kM]B \/ 1\.3 MB +[\d.]+ [kMG]?B\/s +ETA /, 'plain progress lines with bytes, speed and ETA');
  assert.match(run.stderr, /verifying SHA-256 of tiny-f32\.gguf/);
  assert.deepEqual(contents(ws.models), { gguf: ['tiny-f32.gguf'], partial: [] });
  assert.ok(readFileSync(path.join(ws.models, 'tiny-f32.gguf')).equals(tiny));
  const seen = hub.requests.slice(first).map((r) => `${r.method} ${r.path.replace(/[0-9a-f]{64}/, '<sha>')}`);
  assert.ok(seen.includes('GET /flint-test/Tiny-GGUF/resolve/main/tiny-f32.gguf'), seen.join('\n'));
  assert.ok(seen.includes('GET /xet-bridge/<sha>'), seen.join('\n'));

  const before = hub.requests.length;
  const again = await runFlint(['pull', 'test-tiny', '--config', ws.config]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /already downloaded/);
  assert.equal(hub.requests.length, before, 'a model already in models/ needs no network');

  const listing = await modelList(ws.models);
  assert.match(listing, /tiny-f32\.gguf +1\.3 MB +qwen2 +4096 +F32/);
  assert.match(listing, /test-tiny .*\[downloaded\]/);
});

test('interrupted download: Ctrl-C keeps the partial file; the next run resumes without fetching the finished ranges again', async () => {
  const ws = workspace('resume');
  const partialFile = path.join(ws.models, '.partial', 'small-f16.gguf.ipull');
  hub.stallRanges = true;
  try {
    const run = startFlint(['pull', 'hf:flint-test/Small-GGUF/small-f16.gguf', '--config', ws.config], flintEnv());
    // ipull appends its progress record after the file's bytes once a 5 MiB chunk is complete.
    const deadline = Date.now() + 30_000;
    while (!(existsSync(partialFile) && statSync(partialFile).size > small.length)) {
      assert.ok(Date.now() < deadline, 'the first chunk was saved');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    run.child.kill('SIGINT');
    const stopped = await run.done;
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /interrupted; the partial download is kept in .*\.partial: run the same command again to resume/);
  } finally {
    hub.stallRanges = false;
  }
  assert.deepEqual(contents(ws.models), { gguf: [], partial: ['small-f16.gguf.ipull'] });

  const rangesBefore = hub.rangesServed().length;
  const resumed = await runFlint(['pull', 'hf:flint-test/Small-GGUF/small-f16.gguf', '--config', ws.config]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming: 5\.2 of 12\.8 MB already downloaded/);
  assert.match(resumed.stdout, /SHA-256 matches the hub/, "without a catalog checksum, the hub's X-Linked-Etag is checked");
  const ranges = hub.rangesServed().slice(rangesBefore);
  assert.ok(ranges.length > 0 && ranges.every(([start]) => start >= 5 * 1024 * 1024), `resumed ranges: ${JSON.stringify(ranges)}`);
  assert.deepEqual(contents(ws.models), { gguf: ['small-f16.gguf'], partial: [] });
  assert.ok(readFileSync(path.join(ws.models, 'small-f16.gguf')).equals(small));
});

test('corrupt download: a file that is not a GGUF, or is cut short, is refused with the reason and deleted', async () => {
  const ws = workspace('corrupt');
  const page = await runFlint(['pull', 'hf:flint-test/Broken-GGUF/error-page.gguf', '--config', ws.config]);
  assert.equal(page.code, 1);
  assert.match(page.stderr, /'error-page\.gguf' is not a usable GGUF file: it does not start with "GGUF" but with "<!DO" \(an HTML error page, or another format\?\)/);
  await assert.rejects(pullHere('hf:flint-test/Broken-GGUF/truncated.gguf', ws.models), /'truncated\.gguf' is not a usable GGUF file: its header needs \d+ bytes but the file has 4096 \(truncated\)/);
  assert.deepEqual(contents(ws.models), { gguf: [], partial: [] });
});

test('wrong checksum: a SHA-256 that differs from the catalog, or from what the hub states, is refused and the file deleted', async () => {
  const ws = workspace('checksum');
  const catalog = await runFlint(['pull', 'test-wrong-sha', '--config', ws.config]);
  assert.equal(catalog.code, 1);
  assert.match(catalog.stderr, new RegExp(`'other-f32\\.gguf' does not match its checksum: SHA-256 ${sha.tiny}, but the catalog states 0{64}`));
  await assert.rejects(pullHere('hf:flint-test/Changed-GGUF/changed-f32.gguf', ws.models), /'changed-f32\.gguf' does not match its checksum: .* but the hub states f{64}/);
  assert.deepEqual(contents(ws.models), { gguf: [], partial: [] });
});

test('split model: every part is downloaded and checked, and the first part is what gets served', async () => {
  const ws = workspace('split');
  const run = await runFlint(['pull', 'test-split', '--config', ws.config]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /model ready: .*tiny-split-00001-of-00003\.gguf \(downloaded, SHA-256 matches the catalog\)/);
  const names = [1, 2, 3].map((i) => `tiny-split-0000${i}-of-00003.gguf`);
  assert.deepEqual(contents(ws.models), { gguf: names, partial: [] });
  names.forEach((name, i) => assert.ok(readFileSync(path.join(ws.models, name)).equals(splitParts[i]), name));
  const facts = await readGgufFacts(path.join(ws.models, names[0]));
  assert.equal(facts.splitCount, 3);
  assert.match(await modelList(ws.models), /tiny-split-00001-of-00003\.gguf \(\+2 parts\) +1\.3 MB +qwen2/);
});

test('HF_TOKEN opens a gated repository (without it the hub refuses), and hf:owner/repo:quant resolves through the manifest API', async () => {
  const ws = workspace('gated');
  const refused = await runFlint(['pull', 'hf:flint-test/Gated-GGUF/gated-f32.gguf', '--config', ws.config]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Downloading hf:flint-test\/Gated-GGUF\/gated-f32\.gguf failed: .*401/);
  const allowed = await runFlint(['pull', 'hf:flint-test/Gated-GGUF/gated-f32.gguf', '--config', ws.config], flintEnv({ HF_TOKEN: 'hf_loopback_token' }));
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.ok(hub.requests.some((r) => r.path.includes('Gated-GGUF') && r.authorization === 'Bearer hf_loopback_token'));

  await pullHere('hf:flint-test/Tiny-GGUF:F32', ws.models);
  assert.ok(hub.requests.some((r) => r.path === '/v2/flint-test/Tiny-GGUF/manifests/F32'));
  assert.ok(contents(ws.models).gguf.some((f) => /Tiny.*\.gguf$/i.test(f) && readFileSync(path.join(ws.models, f)).equals(tiny)));
});

test('serve --model NAME: a catalog model that is not downloaded is an error naming the fix; with --pull it is downloaded and served', async () => {
  const ws = workspace('serve');
  const logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => logger };
  await assert.rejects(
    resolveModelFile('test-tiny', { modelsDir: ws.models, demoPreset: 'tiny', catalog: loadCatalog(path.join(dir, 'catalog.yaml')), logger }),
    /model 'test-tiny' is not downloaded yet: run 'flint pull test-tiny', or start with --pull/,
  );

  const run = startFlint(['serve', '--model', 'test-tiny', '--pull', '--config', ws.config, '--port', '0', '--host', '127.0.0.1'], flintEnv({ FLINT_LOG_LEVEL: 'warn' }));
  let url: string | undefined;
  for await (const line of createInterface({ input: run.child.stdout! })) {
    url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1];
    if (url) break;
  }
  try {
    assert.ok(url, `serve printed its URL; stderr: ${(await Promise.race([run.done, Promise.resolve(undefined)]))?.stderr ?? ''}`);
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(models.data.map((m) => m.id), ['test-tiny']);
    assert.deepEqual(contents(ws.models).gguf, ['tiny-f32.gguf']);
  } finally {
    run.child.kill('SIGTERM');
    await run.done;
  }
});

test('one pull at a time per models folder: a second is refused naming the first pid; a lock left by a dead process is taken over and removed', async (t) => {
  const ws = workspace('lock');
  const lock = path.join(ws.models, '.partial', '.pull.lock');
  mkdirSync(path.dirname(lock), { recursive: true });
  // Another puller: a live process holds the lock.
  const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => holder.kill('SIGKILL'));
  writeFileSync(lock, String(holder.pid));
  const refused = await runFlint(['pull', 'test-tiny', '--config', ws.config]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`another flint pull \\(pid ${holder.pid}\\) is downloading into .*models; wait for it to finish`));
  assert.deepEqual(contents(ws.models), { gguf: [], partial: [] });
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  // Its process is gone: the next pull takes the lock over, downloads, and leaves no lock behind.
  await pullHere('test-tiny', ws.models);
  assert.deepEqual(contents(ws.models).gguf, ['tiny-f32.gguf']);
  assert.equal(existsSync(lock), false);
  // A model already downloaded is served from the folder even while another pull holds the lock.
  writeFileSync(lock, String(process.ppid));
  await pullHere('test-tiny', ws.models);
  rmSync(lock);
});

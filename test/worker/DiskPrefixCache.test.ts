import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';
import { DiskPrefixCache, type DiskPrefixCacheOptions } from '../../src/worker/DiskPrefixCache.js';
import { SavedPrefixes } from '../../src/worker/SavedPrefixes.js';
import { loadModelIdentity, toStateFormat } from '../../src/worker/stateIdentity.js';
import { thinkModelPath, tinyModelPath } from '../helpers/testModel.js';

let llama: Llama;
let tiny: LlamaModel;
let context: LlamaContext;
let identity: string;
let format: string;
const model = () => tiny;
const scratch = mkdtempSync(path.join(tmpdir(), 'flint-disk-cache-'));
before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', progressLogs: false, maxThreads: 0 });
  tiny = await llama.loadModel({ modelPath: await tinyModelPath() });
  context = await tiny.createContext({ contextSize: 512, sequences: 2, threads: 1, batchSize: 64 });
  identity = await loadModelIdentity(await tinyModelPath());
  format = toStateFormat(llama, context);
});
after(async () => {
  await context?.dispose();
  await tiny?.dispose();
  await llama?.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

/** What a test opened, disposed after it even when an assertion failed (disposing twice is harmless). */
const opened: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const item of opened.splice(0)) item.dispose();
});

function track<T extends { dispose(): void }>(item: T): T {
  opened.push(item);
  return item;
}

/** A prompt of exactly `n` tokens, different for every `seed`. */
function promptOf(seed: string, n = 96): Token[] {
  const tokens = model().tokenize(`${seed}: ` + 'export function cached(value: number): number { return value + 1; }\n'.repeat(12), false);
  assert.ok(tokens.length >= n);
  return tokens.slice(0, n);
}

/** A fresh state file of `sequence` holding exactly `tokens`. */
async function stateFile(sequence: LlamaContextSequence, tokens: Token[], name: string): Promise<{ file: string; bytes: number }> {
  await sequence.clearHistory();
  await sequence.evaluateWithoutGeneratingNewTokens(tokens);
  const file = path.join(scratch, `${name}.bin`);
  await sequence.saveStateToFile(file);
  return { file, bytes: statSync(file).size };
}

/** The disk tier of worker 0 of 1 in `dir`, with warnings collected. */
async function openTier(dir: string, overrides: Partial<DiskPrefixCacheOptions> = {}) {
  const warnings: string[] = [];
  const cache = track(await DiskPrefixCache.open({
    dir,
    workerIndex: 0,
    workers: 1,
    maxBytes: 64 * 1024 * 1024,
    maxEntries: 64,
    model: identity,
    format,
    maxTokens: 512,
    maxPendingBytes: 64 * 1024 * 1024,
    onWarn: (message, details) => warnings.push(`${message} ${details.code}`),
    ...overrides,
  }));
  return { cache, warnings };
}

/** Greedy tokens after `sequence` holds `tokens`: the last prompt token is evaluated again for its logits, as a slot does. */
async function continueGreedy(sequence: LlamaContextSequence, tokens: Token[], count: number): Promise<Token[]> {
  if (sequence.nextTokenIndex > 0) await sequence.eraseContextTokenRanges([{ start: tokens.length - 1, end: sequence.nextTokenIndex }]);
  const out: Token[] = [];
  for await (const token of sequence.evaluate(sequence.nextTokenIndex === 0 ? tokens : tokens.slice(-1), { temperature: 0 })) {
    out.push(token);
    if (out.length === count) break;
  }
  return out;
}

function entryFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.fpc')).map((n) => path.join(dir, n));
}

test('memory evicts to disk; after a restart the state restores with exactly its tokens and generates what a recomputed one does', async () => {
  const dir = path.join(scratch, 'restart');
  const [first, second] = [context.getSequence(), context.getSequence()];
  try {
    const a = promptOf('conversation A');
    const b = promptOf('conversation B');
    const { bytes } = await stateFile(first, a, 'probe');
    // Host memory holds one state: saving B evicts A, which moves to disk.
    const { cache } = await openTier(dir);
    const saved = track(new SavedPrefixes(Math.floor(bytes * 1.5), cache));
    await first.clearHistory();
    await first.evaluateWithoutGeneratingNewTokens(a);
    const savedA = await saved.save(first, 't:one');
    await first.clearHistory();
    await first.evaluateWithoutGeneratingNewTokens(b);
    await saved.save(first, 't:one');
    await cache.idle();
    assert.equal(entryFiles(cache.directory).length, 1, 'A was written to disk');
    assert.ok(saved.holds(savedA!), 'A is still held, now by the disk tier');
    const written = cache.takeReport()!;
    assert.equal(written.entries, 1);
    assert.equal(written.writeSeconds.length, 1);
    saved.dispose();

    // A new worker process: nothing in memory, the disk tier lists the folder.
    const { cache: reopened } = await openTier(dir);
    const afterRestart = track(new SavedPrefixes(Math.floor(bytes * 1.5), reopened));
    assert.equal(afterRestart.find([...a, ...promptOf('more')], 16, 't:two'), undefined, 'another tenant never sees it');
    const found = afterRestart.find([...a, ...promptOf('more')], 16, 't:one');
    assert.deepEqual(found?.tokens, a);
    assert.equal(found?.shared, a.length);
    await second.clearHistory();
    assert.equal(await afterRestart.restore(second, found!.tokens), true);
    assert.deepEqual(second.contextTokens, a, 'the restored sequence holds exactly the saved tokens');
    const restored = await continueGreedy(second, a, 8);
    await first.clearHistory();
    const recomputed = await continueGreedy(first, a, 8);
    assert.deepEqual(restored, recomputed, 'the restored state generates what a recomputed one does');
    const report = reopened.takeReport()!;
    assert.equal(report.restores, 1);
    assert.equal(report.hits, 1);
    assert.equal(report.readSeconds.length, 1);
    assert.equal(entryFiles(reopened.directory).length, 1, 'the entry stays on disk after a restore');
    afterRestart.dispose();
  } finally {
    first.dispose();
    second.dispose();
  }
});

test('a corrupted, a truncated and another model\'s file are deleted and counted, and never loaded', async () => {
  const dir = path.join(scratch, 'bad');
  const sequence = context.getSequence();
  try {
    const prompts = { corrupt: promptOf('corrupt'), truncated: promptOf('truncated'), model: promptOf('other model') };
    const { cache } = await openTier(dir);
    for (const name of ['corrupt', 'truncated'] as const) {
      const state = await stateFile(sequence, prompts[name], name);
      assert.equal(cache.spill(prompts[name], 't:one', state.file, state.bytes), true);
    }
    await cache.idle();
    cache.dispose();
    // A state written by a worker of another model (another file identity), copied in.
    const { cache: other } = await openTier(path.join(scratch, 'other-model'), { model: await loadModelIdentity(await thinkModelPath()) });
    const state = await stateFile(sequence, prompts.model, 'model');
    assert.equal(other.spill(prompts.model, 't:one', state.file, state.bytes), true);
    await other.idle();
    for (const file of entryFiles(other.directory)) copyFileSync(file, path.join(dir, 'w0', path.basename(file)));
    other.dispose();
    const files = entryFiles(path.join(dir, 'w0'));
    assert.equal(files.length, 3);

    // Which file is which: only the entry for `corrupt` shares its first tokens.
    const byTokens = new Map<string, string>();
    for (const file of files) byTokens.set(tokensOf(file).slice(0, 8).join(','), file);
    const fileOf = (name: keyof typeof prompts) => byTokens.get(prompts[name].slice(0, 8).join(','))!;
    flipByte(fileOf('corrupt'), Math.floor(statSync(fileOf('corrupt')).size / 2));
    truncateSync(fileOf('truncated'), Math.floor(statSync(fileOf('truncated')).size / 2));

    const { cache: reopened } = await openTier(dir);
    const atStart = reopened.takeReport()!;
    assert.deepEqual(atStart.badFiles, { truncated: 1, model: 1 }, 'found bad when listed');
    assert.equal(atStart.entries, 1);
    assert.equal(reopened.find(prompts.truncated, 16, 't:one'), undefined);
    assert.equal(reopened.find(prompts.model, 16, 't:one'), undefined);
    // The corrupted one looks fine until its checksum is read, which happens before llama.cpp sees it.
    const found = reopened.find(prompts.corrupt, 16, 't:one');
    assert.ok(found);
    await sequence.clearHistory();
    assert.equal(await reopened.restore(sequence, found.tokens), false);
    assert.equal(sequence.contextTokens.length, 0, 'nothing was loaded');
    const afterRestore = reopened.takeReport()!;
    assert.deepEqual(afterRestore.badFiles, { corrupt: 1 });
    assert.equal(afterRestore.failedRestores, 1);
    assert.equal(afterRestore.entries, 0);
    assert.deepEqual(entryFiles(path.join(dir, 'w0')), [], 'every bad file was deleted');
    reopened.dispose();
  } finally {
    sequence.dispose();
  }
});

test('the disk tier keeps its byte budget, least recently used first (a restore is a use)', async () => {
  const dir = path.join(scratch, 'budget');
  const sequence = context.getSequence();
  try {
    const [a, b, c] = ['budget A', 'budget B', 'budget C'].map((seed) => promptOf(seed));
    const probe = await stateFile(sequence, a, 'budget-probe');
    // Room for two entries, not three.
    const { cache } = await openTier(dir, { maxBytes: Math.floor(probe.bytes * 2.5) });
    for (const [tokens, name] of [[a, 'a'], [b, 'b']] as const) {
      const state = await stateFile(sequence, tokens, name);
      assert.equal(cache.spill(tokens, 't:one', state.file, state.bytes), true);
    }
    await cache.idle();
    const usedA = cache.find(a, 16, 't:one')!;
    await sequence.clearHistory();
    assert.equal(await cache.restore(sequence, usedA.tokens), true);
    const state = await stateFile(sequence, c, 'c');
    assert.equal(cache.spill(c, 't:one', state.file, state.bytes), true);
    await cache.idle();
    assert.ok(cache.find(a, 16, 't:one'), 'A was used last: kept');
    assert.equal(cache.find(b, 16, 't:one'), undefined, 'B was least recently used: evicted');
    assert.ok(cache.find(c, 16, 't:one'));
    assert.equal(entryFiles(cache.directory).length, 2);
    assert.ok(cache.bytes <= Math.floor(probe.bytes * 2.5), `${cache.bytes} bytes held`);
    const oversized = await stateFile(sequence, c, 'oversized');
    const { cache: tiny } = await openTier(path.join(scratch, 'tiny'), { maxBytes: oversized.bytes - 1 });
    assert.equal(tiny.spill(c, 't:one', oversized.file, oversized.bytes), false, 'a state larger than the whole budget is refused');
    tiny.dispose();
    cache.dispose();
  } finally {
    sequence.dispose();
  }
});

test('a state still being written restores at once (from its host-memory file), and is on disk afterwards', async () => {
  const dir = path.join(scratch, 'pending');
  const sequence = context.getSequence();
  try {
    const tokens = promptOf('pending');
    const state = await stateFile(sequence, tokens, 'pending');
    const { cache } = await openTier(dir);
    assert.equal(cache.spill(tokens, 't:one', state.file, state.bytes), true);
    await sequence.clearHistory();
    const restoring = cache.restore(sequence, tokens);
    assert.equal(await restoring, true);
    assert.deepEqual(sequence.contextTokens, tokens);
    await cache.idle();
    assert.equal(entryFiles(cache.directory).length, 1);
    assert.throws(() => statSync(state.file), /ENOENT/, 'the host-memory file is gone once written');
    assert.equal(cache.takeReport()!.restores, 1);
    cache.dispose();
  } finally {
    sequence.dispose();
  }
});

test('workers share the folder: each finds the others\' entries, and a file deleted under a reader is a clean miss', async () => {
  const dir = path.join(scratch, 'shared');
  const sequence = context.getSequence();
  try {
    const { cache: zero } = await openTier(dir, { workers: 2, workerIndex: 0 });
    const { cache: one } = await openTier(dir, { workers: 2, workerIndex: 1 });
    const [a, b] = [promptOf('shared A'), promptOf('shared B')];
    for (const [tokens, name] of [[a, 'sa'], [b, 'sb']] as const) {
      const state = await stateFile(sequence, tokens, name);
      assert.equal(one.spill(tokens, 't:one', state.file, state.bytes), true);
    }
    await one.idle();
    assert.equal(zero.find(a, 16, 't:one'), undefined, 'not listed yet');
    await zero.refresh();
    const found = zero.find(a, 16, 't:one')!;
    assert.deepEqual(found.tokens, a);
    await sequence.clearHistory();
    assert.equal(await zero.restore(sequence, found.tokens), true, 'worker 0 restores what worker 1 wrote');
    assert.equal(zero.takeReport()!.entries, 0, 'worker 1\'s entries are not in worker 0\'s share');
    // Worker 1 drops B (its budget, or an operator) after worker 0 listed it.
    const otherB = zero.find(b, 16, 't:one')!;
    for (const file of entryFiles(one.directory)) if (tokensOf(file).slice(0, 8).join(',') === b.slice(0, 8).join(',')) rmSync(file);
    await sequence.clearHistory();
    assert.equal(await zero.restore(sequence, otherB.tokens), false);
    assert.equal(sequence.contextTokens.length, 0);
    const report = zero.takeReport()!;
    assert.equal(report.failedRestores, 1);
    assert.deepEqual(report.badFiles, {}, 'a vanished file is a miss, not a bad file');
    assert.equal(zero.find(b, 16, 't:one'), undefined, 'and is forgotten');
    zero.dispose();
    one.dispose();
  } finally {
    sequence.dispose();
  }
});

test('a cache folder that cannot be written degrades to misses with a warning, and memory goes on', async () => {
  const blocker = path.join(scratch, 'not-a-folder');
  writeFileSync(blocker, 'a file where the cache folder should be');
  const sequence = context.getSequence();
  try {
    const { cache, warnings } = await openTier(path.join(blocker, 'prompt-cache'));
    assert.equal(warnings.length, 1, warnings.join('; '));
    assert.match(warnings[0], /scan failed.*ENOTDIR/);
    const tokens = promptOf('unwritable');
    const state = await stateFile(sequence, tokens, 'unwritable');
    assert.equal(cache.spill(tokens, 't:one', state.file, state.bytes), true, 'taken: the write fails later, in the background');
    await cache.idle();
    assert.equal(cache.holds(tokens), false);
    assert.match(warnings[1], /write failed.*ENOTDIR/);
    const report = cache.takeReport()!;
    assert.deepEqual(report.errors, { scan: 1, write: 1 });
    assert.throws(() => statSync(state.file), /ENOENT/, 'the host-memory file was deleted all the same');
    const saved = track(new SavedPrefixes(16 * 1024 * 1024, cache));
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(tokens);
    const kept = await saved.save(sequence, 't:one');
    assert.ok(kept && saved.holds(kept), 'host memory still saves');
    saved.dispose();
  } finally {
    sequence.dispose();
  }
});

/** The tokens of an entry file (the state file's own header). */
function tokensOf(file: string): number[] {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(12 + 4 * 8);
    readSync(fd, header, 0, header.length, 0);
    return Array.from({ length: 8 }, (_, i) => header.readUInt32LE(12 + i * 4));
  } finally {
    closeSync(fd);
  }
}

function flipByte(file: string, at: number): void {
  const fd = openSync(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] ^= 0xff;
    writeSync(fd, byte, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

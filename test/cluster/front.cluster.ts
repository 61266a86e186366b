import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { tinyModelPath } from '../helpers/testModel.js';
import { chatTurn, type ChatMessage } from './harness/clients.js';
import { openingText, report, userText, within } from './harness/conversation.js';
import { FlintNode } from './harness/FlintNode.js';
import { Ledger, type Entry } from './harness/Ledger.js';

// (g) A Flint front over two Flint members (engine.workers: 0, upstreams): every request goes
// through the front on 127.0.0.4 to members on 127.0.0.2 and 127.0.0.3, real processes each.
// Warm turns continue from the member's cache; a hung member (SIGSTOP) is marked down by its
// probe: a request sent to it before any output runs on the other, and its stream in flight
// migrates there (the other member continues the answer); a killed member's stream migrates
// too, and nothing is lost.

const memberKey = 'member-key';
const clientKey = 'client-key';
const deadlineMs = 30_000;
/** The front's probe: every 300 ms, 500 ms to answer; a member must answer a request within 2 s. */
const upstream = { probeIntervalMs: 300, probeTimeoutMs: 500, connectTimeoutMs: 2_000, streamIdleTimeoutMs: 3_000 };
const endBoundMs = 5_000;

function frontConfig(members: readonly FlintNode[]): string {
  const entries = members.map((m) => `  - { name: ${m.name}, url: "${m.url}", kind: flint, key: ${memberKey}, slots: 1 }`).join('\n');
  const settings = Object.entries(upstream).map(([k, v]) => `  ${k}: ${v}`).join('\n');
  return `upstreams:\n${entries}\nupstream:\n${settings}\n  retries: 2\n`;
}

async function upOf(front: FlintNode, member: string): Promise<number | undefined> {
  const text = await (await fetch(`${front.url}/metrics`, { headers: { authorization: `Bearer ${clientKey}` } })).text();
  const match = new RegExp(`^flint_upstream_up\\{member="${member}",kind="flint"\\} (\\d)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

async function untilUp(front: FlintNode, member: string, value: number, boundMs: number): Promise<number> {
  const started = performance.now();
  while ((await upOf(front, member)) !== value) {
    if (performance.now() - started > boundMs) throw new Error(`${member} not ${value ? 'up' : 'down'} on the front within ${boundMs} ms`);
    await delay(50);
  }
  return performance.now() - started;
}

test('(g) a front over two members: warm turns through it; the streams of a hung and of a killed member migrate to the other; nothing is lost', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-front-'));
  const model = await tinyModelPath();
  const nodes: FlintNode[] = [];
  t.after(async () => {
    await Promise.all(nodes.map((n) => n.dispose()));
    rmSync(dir, { recursive: true, force: true });
  });
  const env = { FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '4096' };
  for (const [name, host] of [['node-a', '127.0.0.2'], ['node-b', '127.0.0.3']] as const) {
    nodes.push(await FlintNode.start({ name, host, model, dir: path.join(dir, name), env, apiKeys: [memberKey] }));
  }
  const [a, b] = nodes;
  const front = await FlintNode.start({ name: 'front', host: '127.0.0.4', model, dir: path.join(dir, 'front'), env: { FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '4096' }, apiKeys: [clientKey], config: frontConfig([a, b]) });
  nodes.push(front);
  assert.equal(await upOf(front, 'node-a'), 1);
  assert.equal(await upOf(front, 'node-b'), 1);
  const ledger = new Ledger();
  const turn = (base: string, key: string, session: string, messages: ChatMessage[], maxTokens: number, onFirstDelta?: () => void) =>
    chatTurn(base, { ledger, session, key, messages, maxTokens, deadlineMs, onFirstDelta });

  // 1. Warm turns: each session's next turn finds the previous prompt in its member's cache. The
  // same conversation directly on a member gives the TTFT the front is compared with.
  const ttft = { front: [] as number[], direct: [] as number[] };
  for (const [base, key, prefix, sink] of [[front.url, clientKey, 'front', ttft.front], [a.url, memberKey, 'direct', ttft.direct]] as const) {
    for (let s = 0; s < 3; s++) {
      const session = `${prefix}-${s}`;
      const messages: ChatMessage[] = [{ role: 'system', content: openingText }];
      let previous: Entry | undefined;
      for (let i = 1; i <= 4; i++) {
        messages.push({ role: 'user', content: userText(session, i) });
        let firstAt = 0;
        const startedAt = performance.now();
        const { entry, text } = await turn(base, key, session, messages, 8, () => (firstAt = performance.now()));
        assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.detail ?? ''}`);
        if (previous) {
          assert.ok((entry.cachedTokens ?? 0) >= previous.promptTokens! * 0.9, `${entry.id}: cached ${entry.cachedTokens} of the previous prompt's ${previous.promptTokens}`);
          sink.push(firstAt - startedAt);
        }
        messages.push({ role: 'assistant', content: text });
        previous = entry;
      }
    }
  }

  // Two long streams at once: one on each member (the front runs one request per member at once).
  const longStreams = (tag: string) => {
    let started = 0;
    let onBoth!: () => void;
    const both = new Promise<void>((resolve) => (onBoth = resolve));
    const runs = [0, 1].map((i) => turn(front.url, clientKey, `${tag}-${i}`, [{ role: 'user', content: `Write a long story, part ${i}.` }], 1_500, () => ++started === 2 && onBoth()).then((r) => r.entry));
    return { both, runs };
  };

  const metricsText = async () => (await fetch(`${front.url}/metrics`, { headers: { authorization: `Bearer ${clientKey}` } })).text();
  const retriesSoFar = async () => Number(/^flint_upstream_retries_total (\d+)/m.exec(await metricsText())?.[1]);
  const migrationsSoFar = async () => Number(/^flint_upstream_migrations_total\{outcome="ok"\} (\d+)/m.exec(await metricsText())?.[1] ?? 0);

  // 2. Hang before the first token: node-b stops while idle; two requests sent at once take one
  // slot each, so one is leased on node-b, which accepts the connection and never answers. The
  // probe marks it down within its interval and timeout, and that request runs on node-a.
  b.signal('SIGSTOP');
  const idleStoppedAt = performance.now();
  const retried = await Promise.all([0, 1].map((i) => turn(front.url, clientKey, `idle-hang-${i}`, [{ role: 'user', content: `First question ${i}.` }], 4)));
  for (const { entry } of retried) assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.detail ?? ''}`);
  assert.ok((await retriesSoFar()) >= 1, 'the request on the stopped member was retried');
  const failoverMs = Math.max(...retried.map(({ entry }) => entry.endMs)) - idleStoppedAt;
  assert.ok(failoverMs < endBoundMs, `the retried request was answered ${Math.round(failoverMs)} ms after SIGSTOP`);
  b.signal('SIGCONT');
  await untilUp(front, 'node-b', 1, endBoundMs);

  // 3. Hang mid-stream: node-b stops while streaming.
  const hung = longStreams('hang');
  await within(hung.both, deadlineMs, 'both long streams started');
  const stoppedAt = performance.now();
  b.signal('SIGSTOP');
  // Sent at once, before the probe notices: one may be leased on node-b, which never answers.
  const during = await Promise.all([0, 1].map((i) => turn(front.url, clientKey, `during-hang-${i}`, [{ role: 'user', content: `Quick question ${i}.` }], 4)));
  const hangEnds = await within(Promise.all(hung.runs), deadlineMs, 'the long streams ended');
  await untilUp(front, 'node-b', 0, endBoundMs);
  // The stream on the stopped member went on on node-a once the probe (or its idle timeout) gave
  // the member up: both long streams end ok, one of them migrated.
  for (const entry of hangEnds) assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.outcome} ${entry.detail ?? ''}`);
  assert.equal(await migrationsSoFar(), 1, 'the hung stream migrated');
  const hungEndMs = Math.max(...hangEnds.map((e) => e.endMs)) - stoppedAt;
  for (const entry of during) assert.equal(entry.entry.outcome, 'ok', `${entry.entry.id}: ${entry.entry.detail ?? ''}`);
  b.signal('SIGCONT');
  const backUpMs = await untilUp(front, 'node-b', 1, endBoundMs);

  // 4. Kill: node-a dies mid-stream.
  const killed = longStreams('kill');
  await within(killed.both, deadlineMs, 'both long streams started');
  const killedAt = performance.now();
  a.signal('SIGKILL');
  const killEnds = await within(Promise.all(killed.runs), deadlineMs, 'the long streams ended');
  // The stream the killed member was writing went on on node-b.
  for (const entry of killEnds) assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.outcome} ${entry.detail ?? ''}`);
  assert.equal(await migrationsSoFar(), 2, 'the cut stream migrated');
  const killEndMs = Math.max(...killEnds.map((e) => e.endMs)) - killedAt;
  const after = await Promise.all([0, 1, 2, 3].map((i) => turn(front.url, clientKey, `after-kill-${i}`, [{ role: 'user', content: `Another question ${i}.` }], 4)));
  for (const { entry } of after) assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.detail ?? ''}`);
  await untilUp(front, 'node-a', 0, endBoundMs);

  // Nothing ended early: the two streams cut by a stopped or dead member finished on the other.
  const notOk = ledger.entries.filter((e) => e.outcome !== 'ok');
  assert.deepEqual(notOk.map((e) => `${e.id}: ${e.outcome}`), []);
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  report(t, {
    scenario: 'front',
    requests: ledger.entries.length,
    outcomes: ledger.outcomes(),
    replicaSwitches: 0,
    lost: ledger.lost().length,
    warmTtftMs: { front: Math.round(median(ttft.front) * 10) / 10, direct: Math.round(median(ttft.direct) * 10) / 10 },
    hungStreamMigratedEndMs: Math.round(hungEndMs),
    hungBackUpMs: Math.round(backUpMs),
    killedStreamMigratedEndMs: Math.round(killEndMs),
    retries: await retriesSoFar(),
    migrations: await migrationsSoFar(),
    failoverBeforeFirstTokenMs: Math.round(failoverMs),
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { chatTurn } from './harness/clients.js';
import { Cluster } from './harness/Cluster.js';
import { brief, countersAgainstLedger, logCounts, openingText, report, userText, within } from './harness/conversation.js';
import { isAlive } from './harness/FlintNode.js';
import { haproxyMissing } from './harness/Haproxy.js';
import { Ledger, type Entry } from './harness/Ledger.js';
import { settledOrTimedOut, startLongStreams, startTraffic } from './harness/traffic.js';

// (c) kill -9 of a node mid-stream: the streams in flight on it end with a closed connection at
// once (the kernel closes its sockets; HAProxy passes that on), far within the request deadline;
// every request sent after the kill is answered (a refused connection is sent to node-b), and new
// sessions land on node-b, before and after HAProxy marks node-a down.

const skip = haproxyMissing();
const check = { interMs: 500, fall: 8, timeoutMs: 500 };
const deadlineMs = 20_000;
const endBoundMs = 5_000;

test('(c) kill -9 of a node mid-stream: in-flight streams end at once, new sessions land on the survivor', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await Cluster.start({ check, nodeEnv: { FLINT_SLOTS: '3', FLINT_CONTEXT_SIZE: '8192' } });
  t.after(() => cluster.dispose());
  const a = cluster.node('node-a');
  const ledger = new Ledger();
  const before = await cluster.requestsTotal();
  const logBefore = logCounts(cluster);
  const http = await cluster.sessionsPerNode('kill-http', 2);
  const ws = await cluster.sessionsPerNode('kill-ws', 1);
  const [longHttp, longWs] = (await cluster.sessionsPerNode('kill-long', 2)).get('node-a')!;
  const fresh = (await cluster.sessionsPerNode('kill-new', 8)).get('node-a')!;

  let killedAt: number | undefined;
  let downAt: number | undefined;
  const isDone = settledOrTimedOut(ledger, [http, ws], 20_000, () => downAt);
  const traffic = startTraffic({ cluster, ledger, http, ws, isDone, deadlineMs });
  t.after(() => traffic.sockets.forEach((s) => s.terminate()));

  // One long stream over HTTP and one over a WebSocket, both running on node-a when it dies.
  const { longStream, longTurn, socket } = await startLongStreams(cluster, ledger, { httpSession: longHttp, wsSession: longWs, deadlineMs });
  t.after(() => socket.terminate());
  assert.equal(socket.replica, 'node-a');

  killedAt = performance.now();
  a.signal('SIGKILL');
  // How long after the signal a request may still be sent into node-a's dying sockets.
  const deathWindowMs = 250;
  const down = cluster.haproxy.waitFor('flint-a', 'DOWN', killedAt, 10_000);
  const [streamEnd, turnEnd] = await within(Promise.all([longStream.then((r) => r.entry), longTurn.then((r) => r.entry)]), deadlineMs, 'the in-flight streams ended');

  // New sessions that hash to node-a, half before HAProxy marks it down and half after.
  const newSession = async (session: string): Promise<Entry> => {
    const { entry } = await chatTurn(cluster.url, { ledger, session, key: cluster.keyOf(session), messages: [{ role: 'system', content: openingText }, { role: 'user', content: userText(session, 1) }], maxTokens: 8, deadlineMs });
    return entry;
  };
  const beforeDown = await Promise.all(fresh.slice(0, 4).map(newSession));
  const markedDown = await down;
  downAt = markedDown.atMs;
  const afterDown = await Promise.all(fresh.slice(4).map(newSession));
  await within(traffic.done, 60_000, 'the traffic ended');

  for (const end of [streamEnd, turnEnd]) {
    assert.equal(end.outcome, 'cut', `${end.id}: ${end.outcome} ${end.detail ?? ''}`);
    assert.ok(end.endMs - killedAt < endBoundMs, `${end.id} ended ${Math.round(end.endMs - killedAt)} ms after the kill`);
  }
  for (const entry of [...beforeDown, ...afterDown]) assert.deepEqual([entry.outcome, entry.replica], ['ok', 'node-b'], entry.id);
  // Only requests already in flight on node-a when it died are lost. The kill takes effect a few
  // ms after the signal is sent, and a turn sent on a node-a socket before that socket's close
  // reaches the client is lost with it: such a turn may start just after killedAt.
  const lost = ledger.lost();
  for (const entry of lost) assert.ok(entry.startMs < killedAt + deathWindowMs && (entry.replica === 'node-a' || entry.replica === undefined), JSON.stringify({ ...entry, killedAt }));
  for (const session of [...http.get('node-a')!, ...ws.get('node-a')!]) assert.ok(ledger.entries.some((e) => e.session === session && e.outcome === 'ok' && e.replica === 'node-b' && e.startMs > killedAt!), session);
  const switches = ledger.switches();
  for (const session of [...http.get('node-b')!, ...ws.get('node-b')!]) assert.equal(switches.get(session), 0, session);

  // Its workers exit when their parent's channel closes.
  for (let i = 0; i < 100 && a.workerPids.some(isAlive); i++) await delay(50);
  assert.deepEqual(a.workerPids.filter(isAlive), [], 'the killed node left no worker behind');

  // node-b: flint_requests_total; node-a: its `request finished` lines, which the requests it was
  // running when it died never wrote (those are the lost ones).
  const counters = await countersAgainstLedger(cluster, ledger, before, logBefore);
  const [countA, countB] = counters;
  assert.deepEqual([countB.counted, countB.duplicates], [countB.ledger, 0], JSON.stringify(countB));
  assert.deepEqual([countA.counted, countA.duplicates], [countA.ledger - lost.filter((e) => e.replica === 'node-a').length, 0], JSON.stringify(countA));

  report(t, {
    scenario: 'c-kill',
    requests: ledger.count(),
    outcomes: ledger.outcomes(),
    replicaSwitches: [...switches.values()].reduce((x, y) => x + y, 0),
    lost: lost.length,
    lostWereInFlightAtKill: lost.length,
    inFlightStreamEndAfterKillMs: [Math.round(streamEnd.endMs - killedAt), Math.round(turnEnd.endMs - killedAt)],
    markedDownAfterKillMs: Math.round(markedDown.atMs - killedAt),
    newSessionsOnSurvivor: `${[...beforeDown, ...afterDown].filter((e) => e.replica === 'node-b').length}/${fresh.length}`,
    wsReconnects: traffic.reconnects.map((r) => `${r.from}->${r.to} ${r.ms} ms (${r.cause})`),
    counters: counters.map(brief),
  });
});

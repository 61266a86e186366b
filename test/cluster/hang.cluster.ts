import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cluster } from './harness/Cluster.js';
import { brief, countersAgainstLedger, logCounts, report, within } from './harness/conversation.js';
import { isAlive } from './harness/FlintNode.js';
import { haproxyMissing } from './harness/Haproxy.js';
import { Ledger } from './harness/Ledger.js';
import { settledOrTimedOut, startLongStreams, startTraffic } from './harness/traffic.js';

// (d) A hung node: node-a's gateway process is stopped (SIGSTOP by PID) while it streams. Its
// sockets stay open and the kernel still accepts connections for it, so nothing fails by itself:
// HAProxy's /ready check times out, marks it down within fall x inter + timeout, and shuts every
// session still open to it (on-marked-down shutdown-sessions). Its clients' requests then end
// (a closed connection) instead of hanging, and its sessions move to node-b. After SIGCONT it is
// marked up again and its sessions come back to it (consistent hashing).

const skip = haproxyMissing();
const check = { interMs: 500, fall: 8, timeoutMs: 500 };
// When a stopped node is marked down: fall failed checks, each waiting `timeoutMs` for an answer,
// the next one `interMs` after (HAProxy schedules a check an interval after the last one ended).
const markdownBoundMs = check.fall * (check.interMs + check.timeoutMs) + 1_500;
const deadlineMs = 20_000;

test('(d) a hung node (SIGSTOP) is marked down within the bound, its requests end and its sessions move', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await Cluster.start({ check, nodeEnv: { FLINT_SLOTS: '3', FLINT_CONTEXT_SIZE: '8192' } });
  t.after(() => cluster.dispose());
  const a = cluster.node('node-a');
  const ledger = new Ledger();
  const before = await cluster.requestsTotal();
  const logBefore = logCounts(cluster);
  const http = await cluster.sessionsPerNode('hang-http', 2);
  const ws = await cluster.sessionsPerNode('hang-ws', 1);
  const [longHttp, longWs] = (await cluster.sessionsPerNode('hang-long', 2)).get('node-a')!;

  let downAt: number | undefined;
  const isDone = settledOrTimedOut(ledger, [http, ws], 25_000, () => downAt);
  const traffic = startTraffic({ cluster, ledger, http, ws, isDone, deadlineMs });
  t.after(() => traffic.sockets.forEach((s) => s.terminate()));

  const { longStream, longTurn, socket } = await startLongStreams(cluster, ledger, { httpSession: longHttp, wsSession: longWs, deadlineMs });
  t.after(() => socket.terminate());
  assert.equal(socket.replica, 'node-a');

  const stoppedAt = performance.now();
  a.signal('SIGSTOP');
  t.after(() => (a.isRunning ? a.signal('SIGCONT') : undefined));
  const markedDown = await cluster.haproxy.waitFor('flint-a', 'DOWN', stoppedAt, markdownBoundMs);
  downAt = markedDown.atMs;
  const [streamEnd, turnEnd] = await within(Promise.all([longStream.then((r) => r.entry), longTurn.then((r) => r.entry)]), 5_000, 'the streams on the hung node ended');
  await within(traffic.done, 60_000, 'the traffic ended');

  // Resumed before teardown: marked up again (rise 2), and its sessions hash to it again.
  const resumedAt = performance.now();
  a.signal('SIGCONT');
  const markedUp = await cluster.haproxy.waitFor('flint-a', 'UP', resumedAt, 10_000);
  const back = await Promise.all(http.get('node-a')!.map((s) => cluster.replicaOf(s)));

  assert.ok(markedDown.atMs - stoppedAt <= markdownBoundMs);
  // Whatever was open to the hung node ended when it was marked down, not at the request deadline.
  for (const end of [streamEnd, turnEnd]) {
    assert.equal(end.outcome, 'cut', `${end.id}: ${end.outcome} ${end.detail ?? ''}`);
    assert.ok(end.endMs >= stoppedAt && end.endMs - markedDown.atMs < 1_000, `${end.id} ended ${Math.round(end.endMs - markedDown.atMs)} ms after the markdown`);
  }
  const lost = ledger.lost();
  for (const entry of lost) {
    assert.ok(entry.endMs - markedDown.atMs < 1_000, `lost ${entry.id} ended ${Math.round(entry.endMs - markedDown.atMs)} ms after the markdown`);
    assert.ok(entry.replica !== 'node-b', JSON.stringify(entry));
  }
  // Its sessions moved to node-b; node-b's never moved.
  for (const session of [...http.get('node-a')!, ...ws.get('node-a')!]) assert.ok(ledger.entries.some((e) => e.session === session && e.outcome === 'ok' && e.replica === 'node-b' && e.startMs > downAt!), session);
  const switches = ledger.switches();
  for (const session of [...http.get('node-b')!, ...ws.get('node-b')!]) assert.equal(switches.get(session), 0, session);
  assert.deepEqual(back, http.get('node-a')!.map(() => 'node-a'), 'marked up again, its sessions go back to it');
  // The pause was shorter than engine.heartbeatTimeoutMs: its worker was not taken for hung.
  assert.ok(a.workerPids.every(isAlive), 'node-a kept its worker');

  // Both nodes run: flint_requests_total of each. The hung node still counts what it had been
  // given once it resumes: the streams it was running (they end as cancelled: their clients are
  // gone), and requests HAProxy handed it during the pause and, once it marked the node down,
  // sent again to node-b (retry-on empty-response: nothing had come back). Those ran twice, on
  // node-b for the client and on node-a for nobody: `duplicates`. A request shut without a retry
  // may or may not have reached node-a's runner: between 0 and `unattributed` more.
  const counters = await countersAgainstLedger(cluster, ledger, before, logBefore);
  const [countA, countB] = counters;
  assert.deepEqual([countB.counted, countB.duplicates], [countB.ledger, 0], JSON.stringify(countB));
  const unattributed = lost.filter((e) => e.replica === undefined).length;
  const ranOnA = countA.ledger + countA.duplicates;
  assert.ok(countA.counted >= ranOnA && countA.counted <= ranOnA + unattributed, JSON.stringify({ countA, unattributed }));
  for (const f of countA.detail.loggedNotAttributed as Array<{ ledger?: { endMs: number } }>) {
    if (f.ledger) assert.ok(f.ledger.endMs > markedDown.atMs, 'a request run twice was answered by node-b after the markdown');
  }

  report(t, {
    scenario: 'd-hang',
    requests: ledger.count(),
    outcomes: ledger.outcomes(),
    replicaSwitches: [...switches.values()].reduce((x, y) => x + y, 0),
    lost: lost.length,
    markedDownAfterStopMs: Math.round(markedDown.atMs - stoppedAt),
    markdownBoundMs,
    inFlightEndAfterMarkdownMs: [Math.round(streamEnd.endMs - markedDown.atMs), Math.round(turnEnd.endMs - markedDown.atMs)],
    lostEndedAfterMarkdownMaxMs: Math.round(Math.max(...lost.map((e) => e.endMs - markedDown.atMs))),
    markedUpAfterContMs: Math.round(markedUp.atMs - resumedAt),
    wsReconnects: traffic.reconnects.map((r) => `${r.from}->${r.to} ${r.ms} ms (${r.cause})`),
    counters: counters.map(brief),
    unattributedLost: unattributed,
  });
});

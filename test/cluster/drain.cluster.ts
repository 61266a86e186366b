import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatTurn, WsClient } from './harness/clients.js';
import { Cluster } from './harness/Cluster.js';
import { brief, countersAgainstLedger, inputMessage, logCounts, openingText, report, within } from './harness/conversation.js';
import { haproxyMissing } from './harness/Haproxy.js';
import { Ledger } from './harness/Ledger.js';
import { settledOrTimedOut, startTraffic } from './harness/traffic.js';

// (b) Graceful drain during traffic: node-a gets SIGTERM (by PID) while HTTP and WebSocket clients
// talk to both nodes through HAProxy. No request is lost: each ends with a success, a 503 with
// Retry-After before any byte, or a terminal event; WebSocket clients get
// websocket_connection_limit_reached, reconnect through HAProxy and end up on node-b.

const skip = haproxyMissing();
const graceMs = 2_000;
// HAProxy marks a node down (and shuts its sessions) after between (fall - 1) and fall check
// intervals: 3.5 to 4 s here, above the drain (grace + the terminal events), as docker/haproxy.cfg asks.
const check = { interMs: 500, fall: 8, timeoutMs: 500 };
const deadlineMs = 20_000;
const nodeConfig = `  shutdownGraceMs: ${graceMs}\n`;
// Three slots, so the three long generations below take all of node-a's.
const nodeEnv = { FLINT_SLOTS: '3', FLINT_CONTEXT_SIZE: '8192' };
const essay = 'Write a long essay.';

/** Long generations on node-a's sessions: over HTTP, and one over a WebSocket of its own; resolves once all stream. */
async function startLongGenerations(cluster: Cluster, ledger: Ledger, sessions: readonly string[], socketSession: string) {
  let running = 0;
  let onRunning: () => void = () => undefined;
  const allRunning = new Promise<void>((resolve) => (onRunning = () => ++running === sessions.length + 1 && resolve()));
  const http = sessions.map((session) =>
    chatTurn(cluster.url, { ledger, session, key: cluster.keyOf(session), messages: [{ role: 'system', content: openingText }, { role: 'user', content: essay }], maxTokens: 7_000, deadlineMs, onFirstDelta: onRunning }),
  );
  const socket = await WsClient.open(cluster.url, { session: socketSession, key: cluster.keyOf(socketSession), timeoutMs: 10_000 });
  assert.equal(socket.replica, 'node-a');
  const ws = socket.turn({ ledger, input: [inputMessage(`${openingText}\n${essay}`)], maxTokens: 7_000, deadlineMs, onFirstDelta: onRunning });
  await within(allRunning, 20_000, 'the long generations started');
  return { socket, ended: Promise.all([...http.map((p) => p.then((r) => r.entry)), ws.then((r) => r.entry)]) };
}

test('(b) SIGTERM of a node during traffic: 0 lost requests, WebSocket clients move to the other node', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await Cluster.start({ check, nodeConfig, nodeEnv });
  t.after(() => cluster.dispose());
  const a = cluster.node('node-a');
  const b = cluster.node('node-b');
  const ledger = new Ledger();
  const before = await cluster.requestsTotal();
  const logBefore = logCounts(cluster);
  const http = await cluster.sessionsPerNode('drain-http', 3);
  const ws = await cluster.sessionsPerNode('drain-ws', 2);
  const [longWs, ...long] = (await cluster.sessionsPerNode('drain-long', 3)).get('node-a')!;

  let aExitedAt: number | undefined;
  // Traffic runs until node-a is gone and every session has had two answers since, or 20 s.
  const isDone = settledOrTimedOut(ledger, [http, ws], 20_000, () => aExitedAt);
  const traffic = startTraffic({ cluster, ledger, http, ws, isDone, deadlineMs });
  t.after(() => traffic.sockets.forEach((s) => s.terminate()));

  // The drain has streams to let run and then end with their terminal event, and (all of
  // node-a's slots being taken) requests of the loops queued behind them to refuse.
  const longRuns = await startLongGenerations(cluster, ledger, long, longWs);
  t.after(() => longRuns.socket.terminate());

  const signalledAt = performance.now();
  a.signal('SIGTERM');
  const down = cluster.haproxy.waitFor('flint-a', 'DOWN', signalledAt, 10_000);
  const exit = await within(a.exited, 20_000, 'node-a exited');
  aExitedAt = exit.atMs;
  const markedDown = await down;
  const longEnds = await within(longRuns.ended, 30_000, 'the long generations ended');
  await within(traffic.done, 60_000, 'the traffic ended');

  const lost = ledger.lost();
  assert.deepEqual(lost, [], 'every request ended with a success, a 503 + Retry-After or a terminal event');
  assert.equal(exit.code, 0, `node-a exit: ${exit.code} ${exit.signal}; stderr: ${a.stderr()}`);
  const drainMs = exit.atMs - signalledAt;
  assert.ok(drainMs < graceMs + 3_000, `node-a exited ${Math.round(drainMs)} ms after SIGTERM`);
  assert.ok(markedDown.atMs - signalledAt >= (check.fall - 2) * check.interMs, 'marked down no sooner than the checks allow');
  assert.ok(longEnds.every((e) => e.outcome === 'terminal' || e.outcome === 'ok'), JSON.stringify(longEnds));

  // WebSocket sessions that were on node-a: the drain's event and close 1001 (or, for a turn that
  // was queued behind the long generations, its refusal with 503 first), then a new socket that
  // ends up on node-b. A draining node takes no new connection, so no reconnect lands on it again.
  const afterSignal = traffic.reconnects.filter((r) => r.atMs > signalledAt);
  assert.deepEqual(afterSignal.filter((r) => r.to === 'node-a'), [], 'reconnects that landed on the draining node');
  for (const session of ws.get('node-a')!) {
    const moves = afterSignal.filter((r) => r.session === session);
    assert.ok(moves.length > 0, `${session} reconnected`);
    assert.equal(moves[0].from, 'node-a', session);
    assert.ok(['websocket_connection_limit_reached, close 1001', 'turn refused with 503'].includes(moves[0].cause), `${session}: ${moves[0].cause}`);
    assert.equal(moves.at(-1)!.to, 'node-b', `${session}: ${JSON.stringify(moves)}`);
  }
  for (const session of ws.get('node-b')!) assert.ok(!traffic.reconnects.some((r) => r.session === session), `${session} stayed on its socket`);
  // HTTP sessions of node-a continue on node-b; node-b's own sessions never moved.
  for (const session of http.get('node-a')!) assert.ok(ledger.entries.some((e) => e.session === session && e.outcome === 'ok' && e.replica === 'node-b'), session);
  const switches = ledger.switches();
  for (const session of [...http.get('node-b')!, ...ws.get('node-b')!]) assert.equal(switches.get(session), 0, session);

  // node-a is gone: its count is its `request finished` lines; node-b's is flint_requests_total.
  const counters = await countersAgainstLedger(cluster, ledger, before, logBefore);
  for (const c of counters) assert.deepEqual([c.counted, c.duplicates], [c.ledger, 0], JSON.stringify(c));
  assert.ok(b.isRunning);

  report(t, {
    scenario: 'b-drain',
    requests: ledger.count(),
    outcomes: ledger.outcomes(),
    replicaSwitches: [...switches.values()].reduce((x, y) => x + y, 0),
    lost: lost.length,
    refusedOnA: ledger.count((e) => e.outcome === 'refused' && e.replica === 'node-a'),
    longGenerations: longEnds.map((e) => `${e.transport} ${e.outcome}${e.detail ? ` (${e.detail})` : ''}`),
    drainMs: Math.round(drainMs),
    markedDownAfterSigtermMs: Math.round(markedDown.atMs - signalledAt),
    wsReconnects: afterSignal.length,
    wsReconnectsToDrainingNode: afterSignal.filter((r) => r.to === 'node-a').length,
    wsFirstReconnect: ws.get('node-a')!.map((s) => afterSignal.find((r) => r.session === s)!).map((r) => `${r.ms} ms after ${r.cause}`),
    wsOnOtherNodeAfterSigtermMs: ws.get('node-a')!.map((s) => Math.round(afterSignal.find((r) => r.session === s && r.to === 'node-b')!.atMs - signalledAt)),
    counters: counters.map(brief),
  });
});

test(
  '(b) a WebSocket opened during a drain lands on the other node',
  {
    skip,
    timeout: 60_000,
  },
  async (t) => {
    const cluster = await Cluster.start({ check, nodeConfig, nodeEnv });
    t.after(() => cluster.dispose());
    const ledger = new Ledger();
    const [longWs, next, ...long] = (await cluster.sessionsPerNode('todo-long', 4)).get('node-a')!;
    const longRuns = await startLongGenerations(cluster, ledger, long, longWs);
    t.after(() => longRuns.socket.terminate());
    const node = cluster.node('node-a');
    node.signal('SIGTERM');
    // The drain begins when node-a handles the signal: from then on its listener refuses connections.
    const listeningUntil = performance.now() + 5_000;
    while (await fetch(`${node.url}/health`).then(() => true, () => false)) {
      assert.ok(performance.now() < listeningUntil, 'node-a still listens 5 s after SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The client of a session of node-a reconnects (as after websocket_connection_limit_reached).
    const socket = await WsClient.open(cluster.url, { session: next, key: cluster.keyOf(next), timeoutMs: 10_000 });
    t.after(() => socket.terminate());
    assert.equal(socket.replica, 'node-b', 'the draining node no longer takes connections');
  },
);

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatTurn, WsClient, type ChatMessage } from './harness/clients.js';
import { Cluster } from './harness/Cluster.js';
import { brief, countersAgainstLedger, inputMessage, logCounts, openingText, report, userText } from './harness/conversation.js';
import { haproxyMissing } from './harness/Haproxy.js';
import { Ledger } from './harness/Ledger.js';

// (a) Steady affinity: many sessions over HTTP and WebSocket, several turns each, through HAProxy
// in front of two nodes. Every turn of a session lands on the same node (x-flint-replica), and a
// warm turn finds the previous turn's prompt in that node's cache.

const skip = haproxyMissing();

const sessionsPerTransport = 6;
const turns = 4;
const deadlineMs = 30_000;

test('(a) steady affinity over HTTP and WebSocket: 0 replica switches, warm turns hit the cache', { skip, timeout: 90_000 }, async (t) => {
  const cluster = await Cluster.start({ check: { interMs: 500, fall: 8, timeoutMs: 500 } });
  t.after(() => cluster.dispose());
  const ledger = new Ledger();
  const before = await cluster.requestsTotal();
  const logBefore = logCounts(cluster);
  const sockets: WsClient[] = [];
  t.after(() => sockets.forEach((s) => s.close()));
  const started = performance.now();

  const httpSession = async (session: string) => {
    const messages: ChatMessage[] = [{ role: 'system', content: openingText }];
    for (let turn = 1; turn <= turns; turn++) {
      messages.push({ role: 'user', content: userText(session, turn) });
      const { entry, text } = await chatTurn(cluster.url, { ledger, session, key: cluster.keyOf(session), messages, maxTokens: 8, deadlineMs });
      assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.outcome} ${entry.detail ?? ''}`);
      messages.push({ role: 'assistant', content: text });
    }
  };
  const wsSession = async (session: string) => {
    const socket = await WsClient.open(cluster.url, { session, key: cluster.keyOf(session), timeoutMs: 10_000 });
    sockets.push(socket);
    let previous: string | undefined;
    for (let turn = 1; turn <= turns; turn++) {
      const input = turn === 1 ? [inputMessage(`${openingText}\n${userText(session, turn)}`)] : [inputMessage(userText(session, turn))];
      const { entry, response } = await socket.turn({ ledger, input, previousResponseId: previous, maxTokens: 8, deadlineMs });
      assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.outcome} ${entry.detail ?? ''}`);
      previous = response!.id;
    }
    socket.close();
    return socket.replica;
  };
  const httpNames = Array.from({ length: sessionsPerTransport }, (_, i) => `http-${i}`);
  const wsNames = Array.from({ length: sessionsPerTransport }, (_, i) => `ws-${i}`);
  const [, wsReplicas] = await Promise.all([Promise.all(httpNames.map(httpSession)), Promise.all(wsNames.map(wsSession))]);
  const durationMs = performance.now() - started;

  // The upgrade is hashed like any request of the session: the socket's node is the session's node.
  for (const [i, session] of wsNames.entries()) assert.equal(wsReplicas[i], await cluster.replicaOf(session), session);

  const switches = ledger.switches();
  const totalSwitches = [...switches.values()].reduce((a, b) => a + b, 0);
  assert.equal(totalSwitches, 0, JSON.stringify(Object.fromEntries(switches)));
  const perNode = cluster.nodes.map((n) => new Set(ledger.entries.filter((e) => e.replica === n.name).map((e) => e.session)).size);
  assert.ok(perNode.every((count) => count > 0), `sessions per node: ${perNode}`);

  // Warm turns: the previous turn's whole prompt was a prefix of this one, and it was in the cache.
  const warm = [];
  for (const session of [...httpNames, ...wsNames]) {
    const entries = ledger.entries.filter((e) => e.session === session);
    for (let i = 1; i < entries.length; i++) warm.push({ id: entries[i].id, cached: entries[i].cachedTokens ?? 0, previousPrompt: entries[i - 1].promptTokens ?? 0 });
  }
  const ratios = warm.map((w) => w.cached / w.previousPrompt);
  const cold = warm.filter((w) => w.cached < w.previousPrompt - 2);
  assert.deepEqual(cold, [], 'every warm turn reports about the previous prompt as cached');

  const counters = await countersAgainstLedger(cluster, ledger, before, logBefore);
  for (const c of counters) assert.deepEqual([c.counted, c.duplicates], [c.ledger, 0], JSON.stringify(c));

  report(t, {
    scenario: 'a-affinity',
    requests: ledger.count(),
    outcomes: ledger.outcomes(),
    replicaSwitches: totalSwitches,
    lost: ledger.lost().length,
    sessions: httpNames.length + wsNames.length,
    sessionsPerNode: Object.fromEntries(cluster.nodes.map((n, i) => [n.name, perNode[i]])),
    warmTurns: warm.length,
    minCachedOverPreviousPrompt: Math.min(...ratios).toFixed(3),
    counters: counters.map(brief),
    durationMs: Math.round(durationMs),
  });
});

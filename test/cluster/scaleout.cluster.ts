import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatTurn, type ChatMessage } from './harness/clients.js';
import { Cluster } from './harness/Cluster.js';
import { brief, countersAgainstLedger, logCounts, openingText, report, sessionId, userText } from './harness/conversation.js';
import { haproxyMissing } from './harness/Haproxy.js';
import { Ledger, type Entry } from './harness/Ledger.js';

// (b) Scale out: HAProxy hashes sessions (consistent hashing on x-flint-session) over node-a and
// node-b; node-c runs but is listed as flint-c in maintenance, out of the ring. Every session
// has a turn, node-c is brought into rotation through HAProxy's runtime API (set server ...
// state ready, as an operator would), and every session has a turn again, then one more.
//
// Consistent hashing moves only the keys whose ring point now falls to the new server: about the
// new server's share of the ring. With three servers of weight 1, each has 16 points on HAProxy's
// ring (weight x 16), so that share is 1/3 on average, but with so few points a given ring gives
// it noticeably more or less. It is measured here with 600 probe keys (requests that run no
// generation), and 36 sessions sample it with a binomial spread of about +-0.08. The bands below
// allow for both and still tell "about a third" from "none" (the server never came in) and from
// "two thirds" (every key hashed again over three servers, as `hash-type map-based` would do).
// Session ids are fixed UUIDs, shaped like real clients' (Codex's session_id), so every figure
// is the same on every run (0.444 of the sessions and 0.338 of the probe keys); the report shows
// them. What must hold exactly: every session or probe key that moved went to node-c, none moved
// between the old nodes, and no session moved again afterwards.

const skip = haproxyMissing();
const check = { interMs: 500, fall: 8, timeoutMs: 500 };
const sessionCount = 36;
const probeCount = 600;
const deadlineMs = 30_000;
const movedBand = { min: 0.15, max: 0.6 };
const ringShareBand = { min: 0.2, max: 0.5 };

test('(b) scale out: a third node brought into rotation takes about a third of the sessions, all moves go to it, 0 lost', { skip, timeout: 90_000 }, async (t) => {
  const started = performance.now();
  const cluster = await Cluster.start({ check, spare: true });
  t.after(() => cluster.dispose());
  const ledger = new Ledger();
  const before = await cluster.requestsTotal();
  const logBefore = logCounts(cluster);
  const sessions = Array.from({ length: sessionCount }, (_, i) => sessionId(`scale-${i}`));
  const probes = Array.from({ length: probeCount }, (_, i) => sessionId(`probe-${i}`));
  /** Where the balancer sends each probe key now (GET /v1/models with the session header: no generation). */
  const placeProbes = async (): Promise<Map<string, string | undefined>> => {
    const placed = new Map<string, string | undefined>();
    for (let i = 0; i < probes.length; i += 20) {
      const batch = probes.slice(i, i + 20);
      const replicas = await Promise.all(batch.map((p) => cluster.replicaOf(p)));
      batch.forEach((p, j) => placed.set(p, replicas[j]));
    }
    return placed;
  };
  const histories = new Map<string, ChatMessage[]>(sessions.map((s) => [s, [{ role: 'system', content: openingText }]]));

  /** One more turn of every session at once, continuing its conversation; the entries by session. */
  const round = async (turn: number): Promise<Map<string, Entry>> => {
    const ends = await Promise.all(
      sessions.map(async (session) => {
        const messages = histories.get(session)!;
        const user: ChatMessage = { role: 'user', content: userText(session, turn) };
        const { entry, text } = await chatTurn(cluster.url, { ledger, session, key: cluster.keyOf(session), messages: [...messages, user], maxTokens: 8, deadlineMs });
        if (entry.outcome === 'ok') messages.push(user, { role: 'assistant', content: text });
        return [session, entry] as const;
      }),
    );
    for (const [, entry] of ends) assert.equal(entry.outcome, 'ok', `${entry.id}: ${entry.outcome} ${entry.status ?? ''} ${entry.detail ?? ''}`);
    return new Map(ends);
  };

  // Before: two nodes serve, the spare none.
  const first = await round(1);
  const placedBefore = new Map([...first].map(([s, e]) => [s, e.replica!]));
  const perNodeBefore = tallyNodes(placedBefore);
  assert.deepEqual(Object.keys(perNodeBefore).sort(), ['node-a', 'node-b'], `sessions per node before: ${JSON.stringify(perNodeBefore)}`);
  assert.equal((await cluster.node('node-c').requestsTotal()) - before.get('node-c')!, 0, 'the spare ran nothing while in maintenance');
  const probesBefore = await placeProbes();
  assert.deepEqual(Object.keys(tallyNodes(probesBefore as Map<string, string>)).sort(), ['node-a', 'node-b']);

  const { atMs: broughtInAt, upAtMs } = await cluster.bringIn();
  const probesAfter = await placeProbes();
  const probesMoved = probes.filter((p) => probesAfter.get(p) !== probesBefore.get(p));
  assert.deepEqual(probesMoved.filter((p) => probesAfter.get(p) !== 'node-c').map((p) => `${p}: ${probesBefore.get(p)} -> ${probesAfter.get(p)}`), [], 'probe keys that moved between the old nodes');
  const ringShare = probesMoved.length / probeCount;
  assert.ok(ringShare >= ringShareBand.min && ringShare <= ringShareBand.max, `node-c took ${ringShare.toFixed(3)} of the probe keys, outside ${JSON.stringify(ringShareBand)}`);

  // After: each session's next turn, then one more, to see the placement hold.
  const second = await round(2);
  const third = await round(3);
  const placedAfter = new Map([...second].map(([s, e]) => [s, e.replica!]));
  const moved = sessions.filter((s) => placedAfter.get(s) !== placedBefore.get(s));
  const movedTo = tallyNodes(new Map(moved.map((s) => [s, placedAfter.get(s)!])));
  assert.deepEqual(
    moved.filter((s) => placedAfter.get(s) !== 'node-c'),
    [],
    `sessions that moved between the old nodes: ${JSON.stringify(moved.map((s) => `${s}: ${placedBefore.get(s)} -> ${placedAfter.get(s)}`))}`,
  );
  const movedFraction = moved.length / sessionCount;
  assert.ok(movedFraction >= movedBand.min && movedFraction <= movedBand.max, `${moved.length} of ${sessionCount} sessions moved (${movedFraction.toFixed(3)}), outside ${JSON.stringify(movedBand)}`);
  const thirdMoves = sessions.filter((s) => third.get(s)!.replica !== placedAfter.get(s));
  assert.deepEqual(thirdMoves, [], 'sessions that moved again after the scale-out');

  // Sessions that stayed kept their node's cache: the previous turn's prompt was cached. Those
  // that moved start cold on node-c (the prompt cache is per node and per key).
  const cachedShare = (session: string, entries: Map<string, Entry>, previous: Map<string, Entry>) => (entries.get(session)!.cachedTokens ?? 0) / previous.get(session)!.promptTokens!;
  const stayed = sessions.filter((s) => !moved.includes(s));
  const stayedCold = stayed.filter((s) => cachedShare(s, second, first) < 0.9);
  assert.deepEqual(stayedCold, [], 'sessions that stayed on their node and found nothing of the previous turn cached');

  // 0 lost; each node's flint_requests_total matches what the ledger says it answered.
  const lost = ledger.lost();
  assert.deepEqual(lost, []);
  const counters = await countersAgainstLedger(cluster, ledger, before, logBefore);
  for (const c of counters) assert.deepEqual([c.counted, c.duplicates], [c.ledger, 0], JSON.stringify(c));
  const switches = ledger.switches();

  report(t, {
    scenario: 'b-scale-out',
    requests: ledger.count(),
    outcomes: ledger.outcomes(),
    replicaSwitches: [...switches.values()].reduce((x, y) => x + y, 0),
    lost: lost.length,
    sessions: sessionCount,
    sessionsPerNodeBefore: perNodeBefore,
    sessionsPerNodeAfter: tallyNodes(placedAfter),
    moved: moved.length,
    movedFraction: Number(movedFraction.toFixed(3)),
    movedBand,
    movedTo,
    ringShareOfNewNode: Number(ringShare.toFixed(3)),
    ringShareBand,
    probeKeys: probeCount,
    movedBetweenOldNodes: moved.filter((s) => placedAfter.get(s) !== 'node-c').length,
    movedAgainAfter: thirdMoves.length,
    minCachedShareStayed: Number(Math.min(...stayed.map((s) => cachedShare(s, second, first))).toFixed(3)),
    maxCachedShareMoved: Number(Math.max(...moved.map((s) => cachedShare(s, second, first))).toFixed(3)),
    upAfterReadyMs: Math.round(upAtMs - broughtInAt),
    counters: counters.map(brief),
    durationMs: Math.round(performance.now() - started),
  });
});

/** Sessions per node, for the report and the before/after checks. */
function tallyNodes(placed: ReadonlyMap<string, string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const node of [...placed.values()].sort()) counts[node] = (counts[node] ?? 0) + 1;
  return counts;
}

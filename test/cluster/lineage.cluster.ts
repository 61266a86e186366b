import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parsePromText, valueOf } from '../helpers/promText.js';
import { tinyModelPath } from '../helpers/testModel.js';
import { responsesTurn } from './harness/clients.js';
import { Cluster } from './harness/Cluster.js';
import { brief, countersAgainstLedger, inputMessage, logCounts, openingText, report, userText } from './harness/conversation.js';
import { FlintNode } from './harness/FlintNode.js';
import { haproxyMissing } from './harness/Haproxy.js';
import { Ledger, type Entry } from './harness/Ledger.js';

// (e) previous_response_id with and without the affinity key. Chains of Responses turns over
// HTTP (store: true, each continuation naming the previous response), three ways:
// 1. through HAProxy with the session header: every turn of a chain lands on its node, which
//    holds the previous response and its prompt in its KV cache;
// 2. through HAProxy with no session header: HAProxy balances each request round robin, and a
//    node keeps only the responses it served, so a continuation sent to the other node is a clean
//    400 previous_response_not_found; sent again from the last good response, it succeeds where
//    that response is;
// 3. through a Flint front over the same two nodes, with no key either: the front keeps the
//    responses and a keyless chain's lineage (its first response's id as its session key), so
//    every turn of a chain runs on one member, continuing that member's cache.

const skip = haproxyMissing();

const turns = 4;
const chainsPerNode = 3;
const keylessChains = 6;
/** Through the front: one chain per member slot (2 members x 2 slots), so no chain waits for another's slot. */
const frontChains = 4;
/** Requests a keyless chain sends through HAProxy at most, misses included. */
const keylessAttempts = 16;
const maxTokens = 8;
const deadlineMs = 30_000;
const notFound = 'previous_response_not_found';
const memberKey = 'front-member-key';
const clientKey = 'front-client-key';

/** A chain's input of turn `turn`: the first begins with the chain's name, so no other chain's prompt shares more than the template's first tokens. */
function turnText(chain: string, turn: number): string {
  return turn === 1 ? `Chain ${chain}.\n${openingText}\n${userText(chain, 1)}` : userText(chain, turn);
}

function isNotFound(e: Entry): boolean {
  return e.status === 400 && e.detail === notFound;
}

/** A continuation's cached tokens over the input tokens of the response it continues. */
interface Warm {
  readonly id: string;
  readonly cached: number;
  readonly previousInput: number;
}

function coldOf(warm: readonly Warm[]): Warm[] {
  return warm.filter((w) => w.cached < 0.9 * w.previousInput);
}

function minRatio(warm: readonly Warm[]): number {
  return Number(Math.min(...warm.map((w) => w.cached / w.previousInput)).toFixed(3));
}

function frontConfig(members: readonly FlintNode[]): string {
  return `upstreams:\n${members.map((m) => `  - { name: ${m.name}, url: "${m.url}", kind: flint, key: ${memberKey}, slots: 2 }`).join('\n')}\n`;
}

async function metricsOf(node: FlintNode, key: string) {
  const res = await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200, `${node.name} /metrics`);
  return parsePromText(await res.text());
}

/** The front's member index and slot pinned to a session key, from its /v1/flint/status (its own sessions are named there). */
async function pinsOf(front: FlintNode, key: string): Promise<Map<string, Array<{ member: number; slot: number }>>> {
  const res = await fetch(`${front.url}/v1/flint/status`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200, 'front /v1/flint/status');
  const status = (await res.json()) as { workers: Array<{ index: number; slots: Array<{ slot: number; session?: string }> }> };
  const pins = new Map<string, Array<{ member: number; slot: number }>>();
  for (const w of status.workers) for (const s of w.slots) if (s.session !== undefined) pins.set(s.session, [...(pins.get(s.session) ?? []), { member: w.index, slot: s.slot }]);
  return pins;
}

test('(e) previous_response_id: with the session key every turn finds its node; without it a miss is a clean 400; through a front the lineage keeps a chain on its member', { skip, timeout: 120_000 }, async (t) => {
  // A slot for every chain a node may hold at once (up to all 6 keyless ones): this scenario is
  // about where a chain's turns land, not about evictions. With fewer slots a chain's slot can be
  // taken between its turns, and the next turn may find its prefix only in saved prefixes, or not
  // at all (seen once in CI with 3 chains on a 2-slot node: a keyed continuation ran cold).
  const cluster = await Cluster.start({ check: { interMs: 500, fall: 8, timeoutMs: 500 }, otherKeys: [memberKey], nodeEnv: { FLINT_SLOTS: '6' } });
  t.after(() => cluster.dispose());
  const ledger = new Ledger();
  const before = await cluster.requestsTotal();
  const logBefore = logCounts(cluster);
  const started = performance.now();

  // 1. With the session key: each chain on the node HAProxy hashes its session to.
  const keyedByNode = await cluster.sessionsPerNode('keyed', chainsPerNode);
  const keyed = [...keyedByNode.entries()].flatMap(([node, chains]) => chains.map((chain) => ({ chain, node })));
  const keyedChain = async (chain: string, stream: boolean): Promise<Entry[]> => {
    const entries: Entry[] = [];
    let previous: string | undefined;
    for (let turn = 1; turn <= turns; turn++) {
      const { entry, response } = await responsesTurn(cluster.url, { ledger, session: chain, key: cluster.keyOf(chain), sessionHeader: true, input: [inputMessage(turnText(chain, turn))], previousResponseId: previous, maxTokens, stream, deadlineMs });
      entries.push(entry);
      if (entry.outcome !== 'ok') break;
      previous = response!.id;
    }
    return entries;
  };
  const keyedRuns = await Promise.all(keyed.map(({ chain }, i) => keyedChain(chain, i % 2 === 1)));
  const keyedMs = performance.now() - started;

  const keyedEntries = keyedRuns.flat();
  assert.deepEqual(keyedEntries.filter((e) => e.outcome !== 'ok').map((e) => `${e.id}: ${e.outcome} ${e.status ?? ''} ${e.detail ?? ''}`), [], 'keyed turns that did not end ok');
  assert.equal(keyedEntries.length, keyed.length * turns);
  for (const [i, { chain, node }] of keyed.entries()) assert.deepEqual(keyedRuns[i].map((e) => e.replica), Array(turns).fill(node), `${chain}: every turn on its session's node`);
  const keyedSwitches = [...ledger.switches((e) => keyed.some((k) => k.chain === e.session)).values()].reduce((a, b) => a + b, 0);
  assert.equal(keyedSwitches, 0);
  const keyedWarm: Warm[] = keyedRuns.flatMap((entries) => entries.slice(1).map((e, i) => ({ id: e.id, cached: e.cachedTokens ?? 0, previousInput: entries[i].promptTokens! })));
  assert.equal(keyedWarm.length, keyed.length * (turns - 1));
  assert.deepEqual(coldOf(keyedWarm), [], 'keyed continuations that did not find the previous input cached');

  // 2. Without a session header HAProxy has no hash key and balances each request round robin
  // (over its consistent-hash ring: not strictly alternating). A chain goes on from its last good
  // response; a continuation is either a 400 from the node that does not hold that response or
  // an answer from the node that does. How many miss is the balancer's; the test asserts which.
  interface Attempt {
    readonly entry: Entry;
    /** The response this request continued: its node and input tokens. */
    readonly previous?: { readonly replica: string; readonly input: number };
  }
  const keylessStarted = performance.now();
  const keylessChain = async (chain: string, stream: boolean): Promise<Attempt[]> => {
    const attempts: Attempt[] = [];
    let last: { id: string; replica: string; input: number } | undefined;
    for (let done = 0; attempts.length < keylessAttempts && done < turns; ) {
      const { entry, response } = await responsesTurn(cluster.url, { ledger, session: chain, key: cluster.keyOf(chain), sessionHeader: false, input: [inputMessage(turnText(chain, done + 1))], previousResponseId: last?.id, maxTokens, stream, deadlineMs });
      attempts.push({ entry, previous: last && { replica: last.replica, input: last.input } });
      if (entry.outcome === 'ok') {
        last = { id: response!.id, replica: entry.replica!, input: entry.promptTokens! };
        done++;
      } else if (!isNotFound(entry)) break;
    }
    return attempts;
  };
  const keylessNames = Array.from({ length: keylessChains }, (_, i) => `keyless-${i}`);
  const keylessRuns = await Promise.all(keylessNames.map((chain, i) => keylessChain(chain, i % 2 === 1)));
  const keylessMs = performance.now() - keylessStarted;

  const attempts = keylessRuns.flat();
  assert.deepEqual(attempts.filter(({ entry: e }) => e.outcome !== 'ok' && !isNotFound(e)).map(({ entry: e }) => `${e.id}: ${e.outcome} ${e.status ?? ''} ${e.detail ?? ''}`), [], 'keyless requests that ended neither ok nor 400 previous_response_not_found');
  const firsts = attempts.filter((a) => a.previous === undefined);
  assert.equal(firsts.length, keylessChains, 'one first turn per chain');
  assert.ok(firsts.every((a) => a.entry.outcome === 'ok'), 'every first turn ok');
  const continuations = attempts.filter((a) => a.previous !== undefined);
  const misses = continuations.filter((a) => isNotFound(a.entry));
  const found = continuations.filter((a) => a.entry.outcome === 'ok');
  assert.deepEqual(misses.filter((a) => a.entry.replica === undefined || a.entry.replica === a.previous!.replica).map((a) => `${a.entry.id} on ${a.entry.replica}, previous on ${a.previous!.replica}`), [], 'a 400 not from the other node');
  assert.deepEqual(found.filter((a) => a.entry.replica !== a.previous!.replica).map((a) => `${a.entry.id} on ${a.entry.replica}, previous on ${a.previous!.replica}`), [], 'an answered continuation not on the previous response\'s node');
  assert.ok(misses.length > 0 && found.length > 0, `round robin sent continuations to both nodes: ${found.length} found, ${misses.length} not found`);
  const keylessWarm: Warm[] = found.map((a) => ({ id: a.entry.id, cached: a.entry.cachedTokens ?? 0, previousInput: a.previous!.input }));
  assert.deepEqual(coldOf(keylessWarm), [], 'keyless continuations answered on the right node that did not find the previous input cached');
  const firstTurnsPerNode = Object.fromEntries(cluster.nodes.map((n) => [n.name, firsts.filter((a) => a.entry.replica === n.name).length]));

  // Each node counted exactly the requests the ledger attributes to it, the 400s included.
  const counters = await countersAgainstLedger(cluster, ledger, before, logBefore);
  for (const c of counters) assert.deepEqual([c.counted, c.duplicates], [c.ledger, 0], JSON.stringify(c));

  // 3. A Flint front over the two nodes (no local workers), keyless chains through it.
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-lineage-'));
  let frontNode: FlintNode | undefined;
  t.after(async () => {
    await frontNode?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const front = (frontNode = await FlintNode.start({ name: 'front', host: '127.0.0.4', model: await tinyModelPath(), dir: path.join(dir, 'front'), env: { FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, apiKeys: [clientKey], config: frontConfig(cluster.nodes) }));
  const up = await metricsOf(front, clientKey);
  for (const n of cluster.nodes) assert.equal(valueOf(up, 'flint_upstream_up', { member: n.name }), 1, `${n.name} up on the front`);
  const membersBefore = await cluster.requestsTotal();
  const frontLedger = new Ledger();
  const frontStarted = performance.now();
  const frontChain = async (chain: string, stream: boolean) => {
    const entries: Entry[] = [];
    /** Where the front's slot table pinned the chain's lineage key after each continuation. */
    const pins: string[] = [];
    let lineage: string | undefined;
    let previous: string | undefined;
    for (let turn = 1; turn <= turns; turn++) {
      const { entry, response } = await responsesTurn(front.url, { ledger: frontLedger, session: chain, key: clientKey, sessionHeader: false, input: [inputMessage(turnText(chain, turn))], previousResponseId: previous, maxTokens, stream, deadlineMs });
      entries.push(entry);
      if (entry.outcome !== 'ok') break;
      previous = response!.id;
      lineage ??= response!.id;
      if (turn > 1) pins.push(JSON.stringify((await pinsOf(front, clientKey)).get(lineage) ?? []));
    }
    return { entries, pins, lineage };
  };
  const frontNames = Array.from({ length: frontChains }, (_, i) => `front-${i}`);
  const frontRuns = await Promise.all(frontNames.map((chain, i) => frontChain(chain, i % 2 === 1)));
  const frontMs = performance.now() - frontStarted;

  const frontEntries = frontRuns.flatMap((r) => r.entries);
  assert.deepEqual(frontEntries.filter((e) => e.outcome !== 'ok').map((e) => `${e.id}: ${e.outcome} ${e.status ?? ''} ${e.detail ?? ''}`), [], 'front turns that did not end ok');
  assert.equal(frontEntries.length, frontChains * turns);
  // Every continuation of a chain ran under its lineage key on one slot of one member.
  const memberOf = new Map<string, string>();
  for (const [i, run] of frontRuns.entries()) {
    assert.equal(run.pins.length, turns - 1);
    const pinned = JSON.parse(run.pins[0]) as Array<{ member: number; slot: number }>;
    assert.equal(pinned.length, 1, `${frontNames[i]}: its lineage key ${run.lineage} pinned on one slot: ${run.pins[0]}`);
    assert.deepEqual(run.pins, Array(turns - 1).fill(run.pins[0]), `${frontNames[i]}: every continuation on the same slot`);
    memberOf.set(frontNames[i], cluster.nodes[pinned[0].member].name);
  }
  // And the first turn ran there too: each continuation found the previous input in its member's
  // cache, which only that chain's own turns could have left (its prompt starts with its name).
  const frontWarm: Warm[] = frontRuns.flatMap(({ entries }) => entries.slice(1).map((e, i) => ({ id: e.id, cached: e.cachedTokens ?? 0, previousInput: entries[i].promptTokens! })));
  assert.deepEqual(coldOf(frontWarm), [], 'front continuations that did not find the previous input cached');
  // The front's count per member, the members' own counts and the chains pinned there agree.
  const frontMetrics = await metricsOf(front, clientKey);
  const membersAfter = await cluster.requestsTotal();
  const perMember = cluster.nodes.map((n) => ({
    member: n.name,
    chains: [...memberOf.values()].filter((m) => m === n.name).length,
    frontOk: valueOf(frontMetrics, 'flint_upstream_requests_total', { member: n.name, outcome: 'ok' }),
    frontAll: valueOf(frontMetrics, 'flint_upstream_requests_total', { member: n.name }),
    counted: membersAfter.get(n.name)! - membersBefore.get(n.name)!,
  }));
  for (const m of perMember) assert.deepEqual([m.frontOk, m.frontAll, m.counted], [m.chains * turns, m.chains * turns, m.chains * turns], JSON.stringify(m));
  const routes = Object.fromEntries(['affinity', 'prefix', 'copy', 'saved', 'hash', 'tenant', 'cold'].map((route) => [route, valueOf(frontMetrics, 'flint_slot_routes_total', { route })]));
  // The front's slot choices: a stored first turn without a key runs under its own response id,
  // which places it by rendezvous hashing (`hash`) and pins its slot; every later turn keeps that
  // key (lineage) and goes back to the pinned slot (`affinity`).
  assert.deepEqual(
    routes,
    { affinity: frontChains * (turns - 1), prefix: 0, copy: 0, saved: 0, hash: frontChains, tenant: 0, cold: 0 },
    'slot routes on the front: first turns hash, later turns affinity',
  );

  const lost = [...ledger.lost(), ...frontLedger.lost()].filter((e) => !isNotFound(e));
  assert.deepEqual(lost, []);
  const all = new Ledger();
  for (const e of [...ledger.entries, ...frontLedger.entries]) all.add(e);
  report(t, {
    scenario: 'e-lineage',
    requests: all.count(),
    outcomes: all.outcomes(),
    replicaSwitches: keyedSwitches,
    lost: lost.length,
    keyed: { chains: keyed.length, chainsPerNode: Object.fromEntries([...keyedByNode].map(([n, c]) => [n, c.length])), turns: keyedEntries.length, notFound: keyedEntries.filter(isNotFound).length, minCachedOverPreviousInput: minRatio(keyedWarm), durationMs: Math.round(keyedMs) },
    keyless: {
      chains: keylessChains,
      requests: attempts.length,
      firstTurnsPerNode,
      found: found.length,
      notFound: misses.length,
      chainsCompleted: keylessRuns.filter((r) => r.filter((a) => a.entry.outcome === 'ok').length === turns).length,
      minCachedOverPreviousInput: minRatio(keylessWarm),
      durationMs: Math.round(keylessMs),
    },
    front: { chains: frontChains, turns: frontEntries.length, perMember, routes, minCachedOverPreviousInput: minRatio(frontWarm), durationMs: Math.round(frontMs) },
    counters: counters.map(brief),
    durationMs: Math.round(performance.now() - started),
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemberRouter, type Member, type MemberLoad } from '../../src/cluster/MemberRouter.js';
import { SessionKeys } from '../../src/cluster/SessionKeys.js';

const options = { candidates: 2, loadFactor: 1.25, warmSessions: 100_000, prefixEntries: 10_000 };
const members = (n: number, weight = 1): Member[] => Array.from({ length: n }, (_, i) => ({ name: `node-${i}`, weight }));
const keys = Array.from({ length: 20_000 }, (_, i) => `session-${i}`);
const idle = (): MemberLoad => ({ inFlight: 0, capacity: 8 });

function assignment(router: MemberRouter): Map<string, string> {
  return new Map(keys.map((k) => [k, router.choose(k, [], idle)!.member]));
}

test('rendezvous hashing balances keys within 10% across members, by weight', () => {
  const router = new MemberRouter(options);
  router.setMembers(members(5));
  const counts = new Map<string, number>();
  for (const member of assignment(router).values()) counts.set(member, (counts.get(member) ?? 0) + 1);
  const mean = keys.length / 5;
  for (const [member, n] of counts) assert.ok(Math.abs(n - mean) <= 0.1 * mean, `${member}: ${n} keys, mean ${mean}`);

  router.setMembers([...members(4), { name: 'node-big', weight: 2 }]);
  const weighted = new Map<string, number>();
  for (const member of assignment(router).values()) weighted.set(member, (weighted.get(member) ?? 0) + 1);
  const unit = keys.length / 6;
  assert.ok(Math.abs(weighted.get('node-big')! - 2 * unit) <= 0.1 * 2 * unit, `weight 2: ${weighted.get('node-big')} keys`);
});

test('adding a member moves about 1/(N+1) of the keys, all to it; removing one moves only its own', () => {
  const router = new MemberRouter(options);
  router.setMembers(members(4));
  const before = assignment(router);
  router.setMembers(members(5));
  const after = assignment(router);
  const moved = keys.filter((k) => before.get(k) !== after.get(k));
  assert.ok(moved.every((k) => after.get(k) === 'node-4'), 'keys move only to the new member');
  assert.ok(Math.abs(moved.length / keys.length - 1 / 5) <= 0.02, `moved ${moved.length} of ${keys.length}`);

  router.setMembers(members(5).filter((m) => m.name !== 'node-2'));
  const removed = assignment(router);
  for (const k of keys) {
    if (after.get(k) !== 'node-2') assert.equal(removed.get(k), after.get(k), `${k} moved although its member stayed`);
    else assert.notEqual(removed.get(k), 'node-2');
  }
});

test('spill stays within the R candidates; a full pool still answers within them', () => {
  const router = new MemberRouter({ ...options, candidates: 2 });
  router.setMembers(members(6));
  const loads = new Map(members(6).map((m) => [m.name, { inFlight: 0, capacity: 4 }]));
  const load = (name: string) => loads.get(name);
  let spilled = 0;
  for (const k of keys.slice(0, 2000)) {
    const ranked = router.rank(k);
    const decision = router.choose(k, [], load)!;
    assert.ok(ranked.slice(0, 2).includes(decision.member), `${k} went to ${decision.member}, outside its candidates ${ranked.slice(0, 2)}`);
    if (decision.reason === 'spill') spilled++;
    const l = loads.get(decision.member)!;
    loads.set(decision.member, { ...l, inFlight: l.inFlight + 1 });
    // requests end now and then, so the pool hovers around full
    if (Number(k.split('-')[1]) % 3 === 0) for (const [name, v] of loads) loads.set(name, { ...v, inFlight: Math.max(0, v.inFlight - 1) });
  }
  assert.ok(spilled > 0, 'some keys spilled to their second candidate');

  // One member overloaded: its keys go to their second candidate, nobody else's move.
  const hot = new Map(members(6).map((m) => [m.name, { inFlight: m.name === 'node-0' ? 8 : 0, capacity: 8 }]));
  for (const k of keys.slice(0, 500)) {
    const ranked = router.rank(k);
    const d = router.choose(k, [], (n) => hot.get(n))!;
    assert.equal(d.member, ranked[0] === 'node-0' ? ranked[1] : ranked[0]);
  }
});

test('two front instances with the same members choose alike, whatever order they learnt them in', () => {
  const a = new MemberRouter(options);
  const b = new MemberRouter(options);
  a.setMembers(members(7));
  b.setMembers([...members(7)].reverse());
  for (const k of keys.slice(0, 5000)) assert.equal(a.choose(k, [], idle)!.member, b.choose(k, [], idle)!.member);
});

test('a warm session and a served prefix win while their member is a candidate and not full', () => {
  const router = new MemberRouter({ ...options, candidates: 3 });
  router.setMembers(members(5));
  const key = 'session-warm';
  const ranked = router.rank(key);
  router.served(key, [11, 12], ranked[2]);
  assert.deepEqual(router.choose(key, [], idle), { member: ranked[2], reason: 'warm', rank: 2 });
  // another session with the same prompt prefix goes to the member holding it, if it is one of its candidates
  const other = keys.find((k) => router.rank(k).slice(0, 3).includes(ranked[2]) && router.rank(k)[0] !== ranked[2])!;
  assert.equal(router.choose(other, [11, 12, 99], idle)!.reason, 'prefix');
  // full: the warm member yields to hashing
  const full = (name: string) => (name === ranked[2] ? { inFlight: 8, capacity: 8 } : idle());
  assert.notEqual(router.choose(key, [], full)!.member, ranked[2]);
  // gone: forgotten
  router.setMembers(members(5).filter((m) => m.name !== ranked[2]));
  assert.notEqual(router.choose(key, [11, 12], idle)!.reason, 'warm');
});

test('session keys: headers, ?session=, prompt_cache_key, previous_response_id lineage, then the API key; scoped by tenant', () => {
  const sessions = new SessionKeys(['x-flint-session', 'session-id'], 1000);
  const base = { headers: {}, tenant: 't1' };
  assert.deepEqual(sessions.keyOf({ ...base, headers: { 'x-flint-session': 'a', 'session-id': 'b' } }), { key: 't1\u0000a', source: 'header' });
  assert.deepEqual(sessions.keyOf({ ...base, headers: { 'session-id': 'b' } }), { key: 't1\u0000b', source: 'header' });
  assert.deepEqual(sessions.keyOf({ ...base, query: { session: 'q' } }), { key: 't1\u0000q', source: 'query' });
  assert.deepEqual(sessions.keyOf({ ...base, body: { prompt_cache_key: 'p' } }), { key: 't1\u0000pck:p', source: 'prompt_cache_key' });
  sessions.learn('t1', 'resp_1', 't1\u0000a');
  assert.deepEqual(sessions.keyOf({ ...base, body: { previous_response_id: 'resp_1' } }), { key: 't1\u0000a', source: 'lineage' });
  assert.deepEqual(sessions.keyOf({ ...base, tenant: 't2', body: { previous_response_id: 'resp_1' } }), { key: 't2\u0000api-key', source: 'api_key' });
  assert.notEqual(sessions.keyOf({ ...base, headers: { 'x-flint-session': 'a' } }).key, sessions.keyOf({ ...base, tenant: 't2', headers: { 'x-flint-session': 'a' } }).key);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rankByRendezvous } from '../../src/utils/rendezvous.js';

// The ranking the slot table places sessions by on named members (SlotTable#rankedMembers): the
// properties a pool of members behind one or more fronts relies on.

type Member = { name: string; weight: number };
const members = (n: number, weight = 1): Member[] => Array.from({ length: n }, (_, i) => ({ name: `node-${i}`, weight }));
const keys = Array.from({ length: 20_000 }, (_, i) => `t:tenant:session-${i}`);
const firstOf = (pool: readonly Member[]) => new Map(keys.map((k) => [k, rankByRendezvous(k, pool)[0].name]));

test('keys balance within 10% across members, in proportion to their weight', () => {
  const counts = new Map<string, number>();
  for (const member of firstOf(members(5)).values()) counts.set(member, (counts.get(member) ?? 0) + 1);
  const mean = keys.length / 5;
  assert.equal(counts.size, 5);
  for (const [member, n] of counts) assert.ok(Math.abs(n - mean) <= 0.1 * mean, `${member}: ${n} keys, mean ${mean}`);

  const weighted = new Map<string, number>();
  for (const member of firstOf([...members(4), { name: 'node-big', weight: 2 }]).values()) weighted.set(member, (weighted.get(member) ?? 0) + 1);
  const unit = keys.length / 6;
  assert.ok(Math.abs(weighted.get('node-big')! - 2 * unit) <= 0.1 * 2 * unit, `weight 2: ${weighted.get('node-big')} keys`);
});

test('adding a member moves about 1/(N+1) of the keys, all to it; removing one moves only its own', () => {
  const before = firstOf(members(4));
  const after = firstOf(members(5));
  const moved = keys.filter((k) => before.get(k) !== after.get(k));
  assert.ok(moved.every((k) => after.get(k) === 'node-4'), 'keys move only to the new member');
  assert.ok(Math.abs(moved.length / keys.length - 1 / 5) <= 0.02, `moved ${moved.length} of ${keys.length}`);

  const removed = firstOf(members(5).filter((m) => m.name !== 'node-2'));
  for (const k of keys) {
    if (after.get(k) !== 'node-2') assert.equal(removed.get(k), after.get(k), `${k} moved although its member stayed`);
    else assert.notEqual(removed.get(k), 'node-2');
  }
});

test("a key's first R candidates: the R it spills over change only where a member came or went", () => {
  const r = 2;
  const top = (pool: readonly Member[], k: string) => rankByRendezvous(k, pool).slice(0, r).map((m) => m.name);
  for (const k of keys.slice(0, 5000)) {
    const before = top(members(6), k);
    const after = top(members(7), k);
    // The new member enters a key's candidates or leaves them unchanged; it never reorders the others.
    const kept = after.filter((name) => name !== 'node-6');
    assert.deepEqual(kept, before.slice(0, kept.length), k);
  }
});

test('two fronts with the same members rank alike, whatever order they learnt them in', () => {
  const pool = members(7);
  const reversed = [...pool].reverse();
  for (const k of keys.slice(0, 5000)) assert.deepEqual(rankByRendezvous(k, pool).map((m) => m.name), rankByRendezvous(k, reversed).map((m) => m.name));
});

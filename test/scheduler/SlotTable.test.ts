import assert from 'node:assert/strict';
import { rankByRendezvous } from '../../src/utils/rendezvous.js';
import { test } from 'node:test';
import type { WorkerClient } from '../../src/pool/WorkerClient.js';
import { toFingerprint } from '../../src/scheduler/fingerprint.js';
import { SlotTable } from '../../src/scheduler/SlotTable.js';

/** SlotTable reads only a worker's index and liveness. */
function worker(index: number, isAlive = true): WorkerClient {
  return { index, isAlive } as unknown as WorkerClient;
}
const conv = (...contents: string[]) => toFingerprint({ type: 'chat', messages: contents.map((content) => ({ role: 'user', content })) });

test('routes a continued conversation to the slot holding its prefix, else to the least recently used slot', () => {
  const table = new SlotTable();
  table.addWorker(worker(0), 2);
  table.addWorker(worker(1), 2);
  const a = table.lease(conv('alpha'), undefined)!;
  const b = table.lease(conv('beta'), undefined)!;
  assert.equal(a.route, 'cold');
  assert.notDeepEqual([a.worker.index, a.slot], [b.worker.index, b.slot]);
  table.release(a);
  table.release(b);
  const again = table.lease(conv('beta', 'more'), undefined)!;
  assert.equal(again.route, 'prefix');
  assert.deepEqual([again.worker.index, again.slot], [b.worker.index, b.slot]);
  table.release(again);
  const fresh = table.lease(conv('gamma'), undefined)!;
  assert.equal(fresh.route, 'cold');
  assert.notDeepEqual([fresh.worker.index, fresh.slot], [b.worker.index, b.slot], 'a cold request takes the least recently used slot');
});

test('affinity wins when its slot still holds the prefix, and yields when that slot is busy', () => {
  const table = new SlotTable();
  table.addWorker(worker(0), 2);
  const first = table.lease(conv('shared system prompt', 'q1'), 'session-1')!;
  table.release(first);
  const second = table.lease(conv('shared system prompt', 'q1', 'q2'), 'session-1')!;
  assert.equal(second.route, 'affinity');
  assert.equal(second.slot, first.slot);
  // The pinned slot is busy: another request for the same session takes the other slot.
  const third = table.lease(conv('shared system prompt', 'q1', 'q2'), 'session-1')!;
  assert.notEqual(third.slot, second.slot);
  assert.equal(table.lease(conv('x'), undefined), undefined, 'no idle slot left');
  assert.equal(table.busy, 2);
});

test('a prefix evicted from its slot is routed back to the worker that saved it', () => {
  const table = new SlotTable();
  table.addWorker(worker(0), 1);
  table.addWorker(worker(1), 1);
  const a = table.lease(conv('long conversation A'), undefined)!;
  table.release(a);
  const other = table.lease(conv('unrelated'), undefined)!; // takes the other, never-used slot
  table.release(other);
  const b = table.lease(conv('conversation B'), undefined)!; // LRU: evicts A from its slot
  assert.equal(b.worker.index, a.worker.index);
  table.release(b);
  const back = table.lease(conv('long conversation A', 'next turn'), undefined)!;
  assert.equal(back.route, 'saved');
  assert.equal(back.worker.index, a.worker.index);
});

test('slots of a dead worker are never leased', () => {
  const table = new SlotTable();
  table.addWorker(worker(0, false), 2);
  assert.equal(table.lease(conv('x'), undefined), undefined);
  table.addWorker(worker(1), 1);
  assert.equal(table.lease(conv('x'), undefined)?.worker.index, 1);
  assert.equal(table.removeWorker(0), true);
  assert.equal(table.total, 1);
});

test('a fork of a busy or pinned conversation goes to another idle slot of its worker, which copies the shared prefix', () => {
  const table = new SlotTable();
  table.addWorker(worker(0), 3);
  table.addWorker(worker(1), 1);
  const parent = table.lease(conv('system', 'task', 'answer'), 'lane-a')!;
  assert.equal(parent.route, 'cold');
  // Worker 0's other slots are used once, so the LRU rule alone would send a cold request to worker 1.
  const filler = table.lease(conv('filler'), undefined)!;
  table.release(filler);
  // The parent is busy: a fork on another lane takes an idle slot on the parent's worker.
  const fork = table.lease(conv('system', 'task', 'answer', 'fork question'), 'lane-b')!;
  assert.equal(fork.route, 'copy');
  assert.equal(fork.worker.index, parent.worker.index);
  assert.notEqual(fork.slot, parent.slot);
  table.release(fork);
  table.release(parent);
  // Idle but pinned to lane-a: a third lane forking before its end would cut it, so it copies too.
  const early = table.lease(conv('system', 'task', 'other question'), 'lane-c')!;
  assert.equal(early.route, 'copy');
  assert.equal(early.worker.index, parent.worker.index);
  assert.notEqual(early.slot, parent.slot);
  table.release(early);
  // The same lane, or a request that extends the whole held prompt, still takes the pinned slot.
  const next = table.lease(conv('system', 'task', 'answer', 'q2'), 'lane-a')!;
  assert.equal(next.route, 'affinity');
  assert.equal(next.slot, parent.slot);
  table.release(next);
  const extends_ = table.lease(conv('system', 'task', 'answer', 'q2', 'q3'), undefined)!;
  assert.equal(extends_.route, 'prefix');
  assert.equal(extends_.slot, parent.slot);
});

/** A named remote member with `slots` slots: the table ranks new sessions over names. */
function member(index: number, name: string, isAlive = true): WorkerClient {
  return { index, isAlive, routingName: name } as unknown as WorkerClient;
}

/** Where each of `keys` lands first on a fresh table over `members` (name, slots). */
function firstChoices(members: Array<[string, number]>, keys: readonly string[]): Map<string, string> {
  const choices = new Map<string, string>();
  for (const key of keys) {
    const table = new SlotTable();
    for (const [i, [name, slots]] of members.entries()) table.addWorker(member(i, name), slots);
    const lease = table.lease(conv(`first turn of ${key}`), key)!;
    assert.equal(lease.route, 'hash');
    choices.set(key, (lease.worker as unknown as { routingName: string }).routingName);
  }
  return choices;
}

test('new sessions on named members: spread by slots, the same choice whatever the order members were added in; a new member takes about 1/(N+1) of them and only those move', () => {
  const keys = Array.from({ length: 600 }, (_, i) => `t:k_tenant:session-${i}`);
  const two = firstChoices([['node-a', 4], ['node-b', 4]], keys);
  assert.deepEqual(firstChoices([['node-b', 4], ['node-a', 4]], keys), two, 'the order members were listed in does not matter');
  const share = (choices: Map<string, string>, name: string) => [...choices.values()].filter((m) => m === name).length / keys.length;
  assert.ok(Math.abs(share(two, 'node-a') - 0.5) < 0.1, `node-a got ${share(two, 'node-a')}`);
  const three = firstChoices([['node-a', 4], ['node-b', 4], ['node-c', 4]], keys);
  const moved = keys.filter((k) => three.get(k) !== two.get(k));
  assert.ok(moved.every((k) => three.get(k) === 'node-c'), 'keys move only to the new member');
  assert.ok(Math.abs(moved.length / keys.length - 1 / 3) < 0.1, `${moved.length} of ${keys.length} moved`);
  // Twice the slots, about twice the sessions.
  const weighted = firstChoices([['node-a', 8], ['node-b', 4]], keys);
  assert.ok(Math.abs(share(weighted, 'node-a') - 2 / 3) < 0.1, `node-a with 8 slots got ${share(weighted, 'node-a')}`);
});

test('a named member without an idle slot: the session spills to the next it ranks, and a request without a key takes the least busy member', () => {
  const table = new SlotTable();
  table.addWorker(member(0, 'node-a'), 1);
  table.addWorker(member(1, 'node-b'), 1);
  const key = 'session-x';
  const first = table.lease(conv('x'), key)!;
  const spilled = table.lease(conv('y'), key)!;
  assert.equal(spilled.route, 'hash');
  assert.notEqual(spilled.worker, first.worker);
  table.release(first);
  table.release(spilled);
  assert.equal(table.lease(conv('z'), undefined)!.route, 'tenant');
});

test('requests without a key: the least busy named member, ties broken by the tenant rank; two tables agree', () => {
  const names = ['node-a', 'node-b', 'node-c'];
  const build = (order: readonly string[]) => {
    const table = new SlotTable();
    for (const [i, name] of order.entries()) table.addWorker(member(i, name), 2);
    return table;
  };
  const nameOf = (lease: { worker: unknown }) => (lease.worker as { routingName: string }).routingName;
  const tenants = Array.from({ length: 30 }, (_, i) => `t:tenant-${i}`);
  const firsts = new Set<string>();
  for (const tenant of tenants) {
    const table = build(names);
    const first = table.lease(conv(`${tenant} a`), undefined, undefined, tenant)!;
    assert.equal(first.route, 'tenant');
    firsts.add(nameOf(first));
    // The same tenant on another front (members added in another order) starts on the same member.
    assert.equal(nameOf(build([...names].reverse()).lease(conv(`${tenant} a`), undefined, undefined, tenant)!), nameOf(first));
    // Released, the next one goes there again; held, the next two go to the two idle members.
    table.release(first);
    const again = table.lease(conv(`${tenant} b`), undefined, undefined, tenant)!;
    assert.equal(nameOf(again), nameOf(first));
    const second = table.lease(conv(`${tenant} c`), undefined, undefined, tenant)!;
    const third = table.lease(conv(`${tenant} d`), undefined, undefined, tenant)!;
    assert.deepEqual(new Set([nameOf(again), nameOf(second), nameOf(third)]), new Set(names), `${tenant} spread over the idle members`);
  }
  assert.equal(firsts.size, names.length, 'tenants start on different members');
});

test('bounded spill: with R = 2 of 4 members, a session starts only on its first two by rank, waits when both are busy, and requests without a key use any idle slot', () => {
  const names = ['node-a', 'node-b', 'node-c', 'node-d'];
  const table = new SlotTable({ candidates: 2 });
  for (const [i, name] of names.entries()) table.addWorker(member(i, name), 1);
  const nameOf = (lease: { worker: unknown }) => (lease.worker as { routingName: string }).routingName;
  for (let k = 0; k < 40; k++) {
    const key = `t:k:session-${k}`;
    // Its first two choices on a table where nothing is held.
    const first = table.lease(conv(`${key} first`), key)!;
    const second = table.lease(conv(`${key} second`), key)!;
    assert.equal(first.route, 'hash');
    assert.notEqual(nameOf(first), nameOf(second));
    const candidates = new Set([nameOf(first), nameOf(second)]);
    // Both busy: the session waits though two members are idle.
    assert.equal(table.lease(conv(`${key} third`), key), undefined, `${key} spilled beyond its R members`);
    // A request without a key is not bound.
    const free = table.lease(conv(`${key} keyless`), undefined)!;
    assert.ok(!candidates.has(nameOf(free)));
    // Another session whose candidates include an idle member gets one of those only.
    for (const lease of [first, second, free]) table.release(lease);
    // The same key chooses the same two members every time (a fresh table, the same ranks).
    const again = new SlotTable({ candidates: 2 });
    for (const [i, name] of [...names].reverse().entries()) again.addWorker(member(10 + i, name), 1);
    const a = again.lease(conv(`${key} first`), key)!;
    const b = again.lease(conv(`${key} second`), key)!;
    assert.deepEqual(new Set([nameOf(a), nameOf(b)]), candidates, 'two fronts choose the same R members');
  }
});

test('bounded spill never refuses where the session already is: its prefix on a member outside its R is still reused', () => {
  for (let k = 0; k < 20; k++) {
    const table = new SlotTable({ candidates: 1 });
    for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) table.addWorker(member(i, name), 1);
    // A conversation started without a key (anywhere), continued with one.
    const start = table.lease(conv('system', 'task'), undefined)!;
    table.release(start);
    const lease = table.lease(conv('system', 'task', `answer ${k}`), `t:k:key-${k}`)!;
    assert.equal(lease.route, 'prefix');
    assert.equal(lease.worker, start.worker);
  }
});

test("bounded spill: another session's prefix (the system message sessions share) does not draw a session outside its R", () => {
  const names = ['node-a', 'node-b', 'node-c'];
  const nameOf = (lease: { worker: unknown }) => (lease.worker as { routingName: string }).routingName;
  let checked = 0;
  for (let k = 0; k < 40; k++) {
    const table = new SlotTable({ candidates: 1 });
    for (const [i, name] of names.entries()) table.addWorker(member(i, name), 2);
    const first = `t:k:first-${k}`;
    const second = `t:k:second-${k}`;
    const a = table.lease(conv('shared system message', `task of ${first}`), first)!;
    table.release(a);
    const b = table.lease(conv('shared system message', `task of ${second}`), second)!;
    table.release(b);
    // The second session's own member (its R of 1), whichever holds the shared system message.
    const own = rankByRendezvous(second, names.map((name) => ({ name, weight: 2 })))[0].name;
    if (nameOf(a) !== own) checked++;
    assert.equal(nameOf(b), own, `${second} ran where ${first} left the system message`);
    // And it keeps to its member turn after turn.
    const again = table.lease(conv('shared system message', `task of ${second}`, 'answer', 'next'), second)!;
    assert.equal(nameOf(again), nameOf(b));
    table.release(again);
  }
  assert.ok(checked > 10, `sessions whose R differ: ${checked}`);
});

test('affinity breaks are named by cause: busy, evicted, down, moved; a session back on its slot breaks nothing', () => {
  const table = new SlotTable();
  const a = worker(0);
  const b = worker(1);
  table.addWorker(a, 1);
  table.addWorker(b, 1);
  const first = table.lease(conv('session one'), 'k1')!;
  assert.equal(first.affinityBreak, undefined, 'a new session breaks nothing');
  table.release(first);
  const back = table.lease(conv('session one', 'turn 2'), 'k1')!;
  assert.equal(back.route, 'affinity');
  assert.equal(back.affinityBreak, undefined);
  // Its slot busy: the next request of the session runs elsewhere.
  const parallel = table.lease(conv('session one', 'parallel'), 'k1')!;
  assert.equal(parallel.affinityBreak, 'busy');
  table.release(back);
  table.release(parallel);
  // Both slots now hold k1; another session takes both over, then k1 comes back: evicted.
  const others = [table.lease(conv('another one'), 'k2')!, table.lease(conv('and another'), 'k3')!];
  for (const lease of others) table.release(lease);
  assert.equal(table.lease(conv('session one', 'turn 3'), 'k1')!.affinityBreak, 'evicted');
  // A session whose worker went away: down.
  const table2 = new SlotTable();
  table2.addWorker(a, 1);
  table2.addWorker(b, 1);
  const onA = table2.lease(conv('on a'), 'ka')!;
  table2.release(onA);
  table2.removeWorker(onA.worker.index);
  assert.equal(table2.lease(conv('on a', 'again'), 'ka')!.affinityBreak, 'down');
  // Its slot free, but the prompt (a fork) is held longer elsewhere: moved.
  const table3 = new SlotTable();
  table3.addWorker(a, 1);
  table3.addWorker(b, 1);
  const long = table3.lease(conv('shared start', 'long history', 'more'), undefined)!;
  table3.release(long);
  const own = table3.lease(conv('my own'), 'km')!;
  table3.release(own);
  const moved = table3.lease(conv('shared start', 'long history', 'more', 'next'), 'km')!;
  assert.equal(moved.worker, long.worker);
  assert.equal(moved.affinityBreak, 'moved');
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { tinyModelPath } from '../helpers/testModel.js';
import { chatTurn, type ChatResult } from './harness/clients.js';
import { Cluster } from './harness/Cluster.js';
import { brief, countersAgainstLedger, logCounts, openingText, report, sessionId, userText, within } from './harness/conversation.js';
import { FlintNode } from './harness/FlintNode.js';
import { haproxyMissing } from './harness/Haproxy.js';
import { Ledger } from './harness/Ledger.js';

// (f) Overload: bursts of streamed chat requests through HAProxy, four times what the two nodes
// can run and queue (2 slots and scheduler.maxQueueLength 2 each: 8 at once), each request a
// session and key of its own. The nodes shed the rest at admission: every request ends, either
// whole or refused before any byte with 503 or 429, a Retry-After and the protocol's JSON error;
// the queue never grows past its bound; each node serves a normal request right after; its
// memory stays flat over repeated bursts. Before the bursts, one greedy key goes past its own
// limit (limits.concurrentGenerations 2): 429 while its two generations run.
// Then a Flint front over two members with upstream.candidates 1 (no spill): many requests of
// each session at once wait for their session's member instead of spreading to the other.

const skip = haproxyMissing();
const check = { interMs: 500, fall: 8, timeoutMs: 500 };
const slots = 2;
const maxQueueLength = 2;
/** A queued request waits at most this long before a 503: far above a burst's length, so queued ones are served. */
const maxQueueWaitMs = 20_000;
const perNode = slots + maxQueueLength;
const capacity = 2 * perNode;
const burstSize = 4 * capacity;
const bursts = 6;
/** Tokens per request: long enough (a few hundred ms on a 2-core machine) that a burst's arrivals all meet running slots. */
const maxTokens = 24;
const deadlineMs = 20_000;
/** A stream waits server.progressEventMs (2 s by default) for admission before it answers 200: a refusal comes well before. */
const refusalBoundMs = 2_000;
const rssGrowthBoundBytes = 64 * 1024 * 1024;
const concurrentGenerations = 2;
const greedyExtra = 4;
const nodeConfig = `scheduler:\n  maxQueueLength: ${maxQueueLength}\n  maxQueueWaitMs: ${maxQueueWaitMs}\nlimits:\n  concurrentGenerations: ${concurrentGenerations}\n`;

/** What was wrong with a refusal (an answer other than 200), or undefined for a clean one: 503/429, Retry-After, JSON error, from Flint. */
function refusalFault(result: ChatResult): string | undefined {
  const answer = result.answer;
  if (!answer) return 'no answer';
  if (answer.status !== 503 && answer.status !== 429) return `status ${answer.status}`;
  if (!/^[1-9]\d*$/.test(answer.retryAfter ?? '')) return `Retry-After ${JSON.stringify(answer.retryAfter)}`;
  if (!answer.contentType?.startsWith('application/json')) return `content type ${answer.contentType}`;
  if (result.entry.replica === undefined) return 'no x-flint-replica: not answered by a node';
  let body: { error?: { message?: unknown; type?: unknown; code?: unknown } };
  try {
    body = JSON.parse(answer.body);
  } catch {
    return `body is not JSON: ${answer.body.slice(0, 100)}`;
  }
  const error = body.error;
  if (!error || typeof error.message !== 'string' || typeof error.type !== 'string' || typeof error.code !== 'string') return `not an OpenAI error body: ${answer.body.slice(0, 200)}`;
  return undefined;
}

/** The `error.code` of an error body, or undefined when it has none. */
function errorCodeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

const median = (xs: readonly number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

test('(f) overload through HAProxy: bursts past capacity and queue are shed at once with 503/429 + Retry-After, nothing hangs, memory stays flat', { skip, timeout: 90_000 }, async (t) => {
  const started = performance.now();
  const cluster = await Cluster.start({ check, nodeConfig, nodeEnv: { FLINT_SLOTS: String(slots) } });
  t.after(() => cluster.dispose());
  const ledger = new Ledger();
  const before = await cluster.requestsTotal();
  const logBefore = logCounts(cluster);
  const gaugeNames = ['flint_requests_waiting', 'flint_requests_running', 'flint_queue_depth', 'flint_queue_limit'] as const;
  const maxGauges = new Map(cluster.nodes.map((n) => [n.name, Object.fromEntries(gaugeNames.map((g) => [g, 0])) as Record<string, number>]));
  const rssAfter: Array<Map<string, ReturnType<FlintNode['rss']>>> = [];
  const perBurst: Array<{ ok: number; refused: Record<string, number>; okPerNode: Record<string, number> }> = [];
  const refusalMs: number[] = [];
  const faults: string[] = [];
  const burstMs: number[] = [];

  // A greedy key: two long generations run (their first tokens are out), then four more requests
  // of the same key are refused by its own limit, whatever room the node has.
  const greedy = sessionId('greedy');
  const greedyTurn = (maxTokensOfTurn: number, onFirstDelta?: () => void) =>
    chatTurn(cluster.url, { ledger, session: greedy, key: cluster.keyOf(greedy), messages: [{ role: 'user', content: 'Write a long essay.' }], maxTokens: maxTokensOfTurn, deadlineMs, onFirstDelta });
  let streaming = 0;
  let onBoth!: () => void;
  const bothStreaming = new Promise<void>((resolve) => (onBoth = resolve));
  const greedyLong = Array.from({ length: concurrentGenerations }, () => greedyTurn(300, () => ++streaming === concurrentGenerations && onBoth()));
  await within(bothStreaming, 10_000, "the greedy key's generations started");
  const greedyRefused = await within(Promise.all(Array.from({ length: greedyExtra }, () => greedyTurn(8))), 5_000, "the greedy key's extra requests ended");
  const greedyRan = await within(Promise.all(greedyLong), deadlineMs, "the greedy key's generations ended");
  for (const r of greedyRan) assert.equal(r.entry.outcome, 'ok', `${r.entry.id}: ${r.entry.outcome} ${r.entry.detail ?? ''}`);
  for (const r of greedyRefused) {
    assert.equal(refusalFault(r), undefined, `${r.entry.id}: ${r.entry.outcome} ${r.entry.detail ?? ''}`);
    assert.equal(r.answer!.status, 429, r.entry.id);
    assert.equal(errorCodeOf(r.answer!.body), 'rate_limit_exceeded', r.entry.id);
  }
  // The refusals came while the two ran: they were over the key's limit, not after it.
  assert.ok(Math.max(...greedyRefused.map((r) => r.entry.endMs)) < Math.min(...greedyRan.map((r) => r.entry.endMs)), 'the extra requests ended before the generations');

  for (let b = 0; b < bursts; b++) {
    // Each node's gauges, read directly every 25 ms while the burst runs.
    let isRunning = true;
    const sampler = (async () => {
      while (isRunning) {
        for (const node of cluster.nodes) {
          const sample = await node.gauges(gaugeNames);
          const max = maxGauges.get(node.name)!;
          for (const g of gaugeNames) max[g] = Math.max(max[g], sample[g]);
        }
        await delay(25);
      }
    })();
    const burstStarted = performance.now();
    const results = await within(
      Promise.all(
        Array.from({ length: burstSize }, (_, i) => {
          const session = sessionId(`burst-${b}-${i}`);
          return chatTurn(cluster.url, { ledger, session, key: cluster.keyOf(session), messages: [{ role: 'system', content: openingText }, { role: 'user', content: userText(session, 1) }], maxTokens, deadlineMs });
        }),
      ),
      deadlineMs + 5_000,
      `burst ${b} ended`,
    );
    burstMs.push(performance.now() - burstStarted);
    isRunning = false;
    await sampler;

    const ok = results.filter((r) => r.entry.outcome === 'ok');
    const notOk = results.filter((r) => r.entry.outcome !== 'ok');
    for (const r of notOk) {
      const fault = refusalFault(r);
      if (fault) faults.push(`${r.entry.id}: ${r.entry.outcome} ${fault} (${r.entry.detail ?? ''})`);
      else refusalMs.push(r.entry.endMs - r.entry.startMs);
    }
    const refused: Record<string, number> = {};
    for (const r of notOk) {
      const key = r.answer ? `${r.answer.status}:${errorCodeOf(r.answer.body)}` : r.entry.outcome;
      refused[key] = (refused[key] ?? 0) + 1;
    }
    const okPerNode: Record<string, number> = Object.fromEntries(cluster.nodes.map((n) => [n.name, ok.filter((r) => r.entry.replica === n.name).length]));
    perBurst.push({ ok: ok.length, refused, okPerNode });
    rssAfter.push(new Map(cluster.nodes.map((n) => [n.name, n.rss()])));
  }

  // Every request ended within its deadline, whole or cleanly refused.
  assert.deepEqual(faults, [], 'requests that ended neither whole nor refused with 503/429, Retry-After and a JSON error');
  for (const [b, burst] of perBurst.entries()) {
    assert.ok(burst.ok < burstSize, `burst ${b}: some requests were refused (${JSON.stringify(burst)})`);
    // Each node ran and queued what it can (it got more than that of every burst).
    for (const node of cluster.nodes) assert.ok(burst.okPerNode[node.name] >= perNode, `burst ${b}: ${node.name} answered ${burst.okPerNode[node.name]}, fewer than its ${perNode} slots and queue places`);
  }
  assert.ok(Math.max(...refusalMs) < refusalBoundMs, `slowest refusal ${Math.round(Math.max(...refusalMs))} ms`);
  for (const [name, max] of maxGauges) {
    assert.equal(max.flint_queue_limit, maxQueueLength, name);
    assert.ok(max.flint_queue_depth <= maxQueueLength, `${name}: queue depth reached ${max.flint_queue_depth}`);
    assert.ok(max.flint_requests_running <= slots, `${name}: ${max.flint_requests_running} running`);
  }

  // After the bursts, a normal request succeeds on each node.
  const after = await cluster.sessionsPerNode('after-overload', 1);
  const normal = await Promise.all(
    [...after].map(async ([node, [session]]) => {
      const { entry } = await chatTurn(cluster.url, { ledger, session, key: cluster.keyOf(session), messages: [{ role: 'user', content: userText(session, 1) }], maxTokens: 8, deadlineMs });
      return { node, entry };
    }),
  );
  for (const { node, entry } of normal) assert.deepEqual([entry.outcome, entry.replica], ['ok', node], `${entry.id}: ${entry.status} ${entry.detail ?? ''}`);

  // Memory: each process's RSS after the last burst is within the bound of after the first.
  const growth = cluster.nodes.map((n) => {
    const first = rssAfter[0].get(n.name)!;
    const last = rssAfter.at(-1)!.get(n.name)!;
    return { node: n.name, gateway: last.gateway - first.gateway, workers: last.workers.map((w, i) => w - first.workers[i]) };
  });
  for (const g of growth) {
    assert.ok(g.gateway <= rssGrowthBoundBytes, `${g.node}: gateway RSS grew ${mib(g.gateway)} MiB over ${bursts - 1} bursts`);
    for (const w of g.workers) assert.ok(w <= rssGrowthBoundBytes, `${g.node}: worker RSS grew ${mib(w)} MiB over ${bursts - 1} bursts`);
  }

  // Each node counted what the ledger says it answered, refusals included.
  const counters = await countersAgainstLedger(cluster, ledger, before, logBefore);
  for (const c of counters) assert.deepEqual([c.counted, c.duplicates], [c.ledger, 0], JSON.stringify(c));

  report(t, {
    scenario: 'f-overload',
    requests: ledger.count(),
    // The ledger's classes are a drain's: it counts a 503 + Retry-After as refused, any 429 as failed.
    outcomes: ledger.outcomes(),
    refusals: { '503': ledger.count((e) => e.status === 503), '429': ledger.count((e) => e.status === 429) },
    replicaSwitches: 0,
    lost: faults.length,
    capacity: { nodes: 2, slots, maxQueueLength, atOnce: capacity },
    greedyKey: {
      concurrentGenerations,
      ran: greedyRan.length,
      refused: greedyRefused.map((r) => `${r.answer!.status} Retry-After ${r.answer!.retryAfter} in ${Math.round(r.entry.endMs - r.entry.startMs)} ms`),
    },
    burstSize,
    bursts: perBurst,
    burstMs: burstMs.map(Math.round),
    medianRefusalMs: Math.round(median(refusalMs) * 10) / 10,
    maxRefusalMs: Math.round(Math.max(...refusalMs) * 10) / 10,
    maxGauges: Object.fromEntries(maxGauges),
    rssMiB: cluster.nodes.map((n) => ({
      node: n.name,
      gateway: rssAfter.map((r) => mib(r.get(n.name)!.gateway)),
      workers: rssAfter.map((r) => r.get(n.name)!.workers.map(mib)),
    })),
    counters: counters.map(brief),
    durationMs: Math.round(performance.now() - started),
  });
});

// (f) Under load behind a front: upstream.candidates 1 gives each session exactly one member (its
// first by rendezvous rank); with more requests of a session at once than its member has slots,
// the rest wait for that member rather than spilling to the other. Which member ran a request is
// read from the members' own `request finished` lines: each session's prompt has a length of
// its own (checked), and those lines carry the prompt's token count.

const memberKey = 'member-key';
const clientKey = 'client-key';
const frontSessions = 8;
const requestsPerSession = 4;
const memberSlots = 2;

/**
 * A front (127.0.0.4) over node-a and node-b, and `requestsPerSession` requests of each of
 * `frontSessions` sessions sent at once: more than the members' slots together. With
 * `sharedSystemPrompt`, every session opens with the same system message (as every session of
 * one coding agent does); without it, each session's system message is its own.
 */
async function frontUnderLoad(t: TestContext, scenario: string, options: { sharedSystemPrompt: boolean }): Promise<void> {
  const started = performance.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'flint-overload-front-'));
  const model = await tinyModelPath();
  const nodes: FlintNode[] = [];
  t.after(async () => {
    await Promise.all(nodes.map((n) => n.dispose()));
    rmSync(dir, { recursive: true, force: true });
  });
  const env = { FLINT_SLOTS: String(memberSlots), FLINT_CONTEXT_SIZE: '2048' };
  const starts = await Promise.allSettled(
    (
      [
        ['node-a', '127.0.0.2'],
        ['node-b', '127.0.0.3'],
      ] as const
    ).map(([name, host]) => FlintNode.start({ name, host, model, dir: path.join(dir, name), env, apiKeys: [memberKey] })),
  );
  nodes.push(...starts.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : [])));
  for (const s of starts) if (s.status === 'rejected') throw s.reason;
  const members = [...nodes];
  const entries = members.map((m) => `  - { name: ${m.name}, url: "${m.url}", kind: flint, key: ${memberKey}, slots: ${memberSlots} }`).join('\n');
  const frontConfig = `upstreams:\n${entries}\nupstream:\n  candidates: 1\n  probeIntervalMs: 300\n`;
  const front = await FlintNode.start({ name: 'front', host: '127.0.0.4', model, dir: path.join(dir, 'front'), env: { FLINT_WORKERS: '0', FLINT_CONTEXT_SIZE: '2048' }, apiKeys: [clientKey], config: frontConfig });
  nodes.push(front);
  const logBefore = new Map(members.map((m) => [m.name, m.finished.length]));
  const ledger = new Ledger();

  // Session i's user message has i more words than session 0's.
  const sessions = Array.from({ length: frontSessions }, (_, i) => sessionId(`front-load-${i}`));
  const prompt = (i: number) => [
    { role: 'system' as const, content: options.sharedSystemPrompt ? openingText : `Session ${i}. ${openingText}` },
    { role: 'user' as const, content: `${userText(`session ${i}`, 1)}${' Thanks.'.repeat(i)}` },
  ];
  const results = await within(
    Promise.all(sessions.flatMap((session, i) => Array.from({ length: requestsPerSession }, () => chatTurn(front.url, { ledger, session, key: clientKey, messages: prompt(i), maxTokens: 16, deadlineMs })))),
    deadlineMs + 5_000,
    'the requests through the front ended',
  );
  const faults = results.filter((r) => r.entry.outcome !== 'ok' && (r.answer?.status !== 503 || refusalFault(r) !== undefined));
  assert.deepEqual(faults.map((r) => `${r.entry.id}: ${r.entry.outcome} ${r.entry.status ?? ''} ${r.entry.detail ?? ''}`), [], 'requests that ended neither ok nor 503 + Retry-After');
  const ok = results.filter((r) => r.entry.outcome === 'ok');
  assert.ok(ok.length >= 2 * memberSlots, `${ok.length} answered`);

  // A member logs a request once its stream is over, which may come just after the front has
  // passed the end on: the members' logs are read once they have as many lines as there were
  // answers (or after 5 s; the checks below then say what is missing).
  const logged = () => members.reduce((n, m) => n + m.finished.length - logBefore.get(m.name)!, 0);
  for (let waited = 0; logged() < ok.length && waited < 5_000; waited += 20) await delay(20);

  // Each session's prompt length tells its requests apart in the members' logs.
  const tokensOf = new Map<string, number>();
  for (const r of ok) {
    const seen = tokensOf.get(r.entry.session);
    assert.ok(seen === undefined || seen === r.entry.promptTokens, `${r.entry.session}: prompt tokens ${seen} and ${r.entry.promptTokens}`);
    tokensOf.set(r.entry.session, r.entry.promptTokens!);
  }
  assert.equal(new Set(tokensOf.values()).size, tokensOf.size, `each session's prompt has a token count of its own: ${JSON.stringify([...tokensOf.values()])}`);
  const sessionOfTokens = new Map([...tokensOf].map(([session, tokens]) => [tokens, session]));
  const ranOn = new Map<string, Record<string, number>>(sessions.map((s) => [s, {}]));
  const strays: unknown[] = [];
  for (const member of members) {
    for (const line of member.finished.slice(logBefore.get(member.name))) {
      const session = line.promptTokens === undefined ? undefined : sessionOfTokens.get(line.promptTokens);
      if (!session || line.status !== 200) {
        strays.push({ member: member.name, ...line });
        continue;
      }
      const counts = ranOn.get(session)!;
      counts[member.name] = (counts[member.name] ?? 0) + 1;
    }
  }
  assert.deepEqual(strays, [], 'member log lines of no session of the test, or not answered 200');
  const okPerSession = (session: string) => ok.filter((r) => r.entry.session === session).length;
  for (const session of sessions) assert.equal(Object.values(ranOn.get(session)!).reduce((x, y) => x + y, 0), okPerSession(session), `${session}: the members ran what the front answered`);
  const table = [...ranOn].map(([session, counts], i) => `session ${i} (${session.slice(0, 8)}): ${JSON.stringify(counts)}`);
  const spread = [...ranOn.values()].filter((c) => Object.keys(c).length > 1).length;
  assert.equal(spread, 0, `${spread} of ${frontSessions} sessions ran on both members with upstream.candidates 1:\n${table.join('\n')}`);

  const sessionsPerMember: Record<string, number> = {};
  for (const counts of ranOn.values()) for (const member of Object.keys(counts)) sessionsPerMember[member] = (sessionsPerMember[member] ?? 0) + 1;
  report(t, {
    scenario,
    requests: ledger.count(),
    outcomes: ledger.outcomes(),
    replicaSwitches: spread,
    lost: faults.length,
    sessions: frontSessions,
    requestsPerSession,
    memberSlots,
    sessionsPerMember,
    requestsPerMember: Object.fromEntries(members.map((m) => [m.name, m.finished.length - logBefore.get(m.name)!])),
    refusedByFront: results.filter((r) => r.answer?.status === 503).length,
    sessionsOnBothMembers: spread,
    durationMs: Math.round(performance.now() - started),
  });
}

test('(f) a front with upstream.candidates 1 under load: every session stays on one member, requests end ok or 503 + Retry-After', { timeout: 60_000 }, (t) =>
  frontUnderLoad(t, 'f-overload-front', { sharedSystemPrompt: false }),
);

// Sessions that share their system message (every session of one agent does): an idle slot of
// the other member holding another session's prompt shares that message, and must not draw a
// session outside its R (the slot table's bounded spill filters the prefix route too).
test('(f) a front with upstream.candidates 1 under load, sessions sharing their system prompt: every session stays on one member', { timeout: 60_000 }, (t) =>
  frontUnderLoad(t, 'f-overload-front-shared-system', { sharedSystemPrompt: true }),
);

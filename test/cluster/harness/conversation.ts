import { createHash } from 'node:crypto';
import type { TestContext } from 'node:test';
import type { Cluster } from './Cluster.js';
import type { Ledger } from './Ledger.js';

/**
 * The opening of every conversation: long enough (well over engine.minSavedPrefixTokens) that a
 * session whose slot another session took is restored from saved prefixes, not recomputed.
 */
export const openingText = [
  'You are reviewing a small TypeScript module. Keep every answer short.',
  'export function parseRange(text: string): { start: number; end: number } {',
  "  const [start, end] = text.split('-').map((part) => Number.parseInt(part.trim(), 10));",
  "  if (!Number.isFinite(start) || !Number.isFinite(end)) throw new RangeError(`bad range: ${text}`);",
  '  return start <= end ? { start, end } : { start: end, end: start };',
  '}',
  'export function overlaps(a: { start: number; end: number }, b: { start: number; end: number }): boolean {',
  '  return a.start <= b.end && b.start <= a.end;',
  '}',
  'export function merge(ranges: Array<{ start: number; end: number }>): Array<{ start: number; end: number }> {',
  '  const sorted = [...ranges].sort((x, y) => x.start - y.start);',
  '  const out: Array<{ start: number; end: number }> = [];',
  '  for (const range of sorted) {',
  '    const last = out.at(-1);',
  '    if (last && overlaps(last, range)) last.end = Math.max(last.end, range.end);',
  '    else out.push({ ...range });',
  '  }',
  '  return out;',
  '}',
].join('\n');

/** The user's message of turn `n` (1-based) of a session. */
export function userText(session: string, turn: number): string {
  return `${session}, turn ${turn}: suggest one change to merge() and explain it in a sentence.`;
}

/**
 * A fixed session id shaped like a real client's (a UUID, as Codex's session_id), made from a
 * SHA-256 of `seed`. Such ids spread over HAProxy's hash ring as clients' do; sequential names
 * (s-1, s-2, ...) do not: the default sdbm hash has no avalanche, so they hash to nearby points.
 */
export function sessionId(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A Responses input message. */
export function inputMessage(text: string): { type: 'message'; role: 'user'; content: Array<{ type: 'input_text'; text: string }> } {
  return { type: 'message', role: 'user', content: [{ type: 'input_text', text }] };
}

/** The figures of one scenario, printed as a test diagnostic (the suite's report). */
export interface ScenarioFigures {
  readonly scenario: string;
  readonly requests: number;
  readonly outcomes: ReturnType<Ledger['outcomes']>;
  readonly replicaSwitches: number;
  readonly lost: number;
  readonly [figure: string]: unknown;
}

export function report(t: TestContext, figures: ScenarioFigures): void {
  t.diagnostic(`cluster figures ${JSON.stringify(figures)}`);
}

/** The detail of a WebSocket turn whose frame crossed the drain's go-away (see WsClient.turn). */
export const notRun = 'websocket_connection_limit_reached';

/** One node's count against the ledger. */
export interface NodeCount {
  readonly node: string;
  /** What the node counted since the scenario's start: flint_requests_total, or its log lines once it is gone. */
  readonly counted: number;
  readonly source: 'metrics' | 'log';
  /** Requests the client attributes to the node (by x-flint-replica). */
  readonly ledger: number;
  /**
   * Requests the node ran whose answer the client got from another node: HAProxy sent them here,
   * gave up on this node (marked down, its sessions shut) and sent them again elsewhere
   * (retry-on empty-response), and this node still ran them when it could.
   */
  readonly duplicates: number;
  /** What did not add up, for the failure message. */
  readonly detail: Record<string, unknown>;
}

/**
 * flint_requests_total per node against the ledger: what each node counted since `before`
 * (read from /metrics; for a node that is gone, from its `request finished` log lines, which
 * are written with the same summary) and what the client attributes to it, less the WebSocket
 * turns that the node never ran (`notRun`). HTTP requests are also matched one by one: their
 * ledger id is their x-request-id, which the node logs.
 */
export async function countersAgainstLedger(cluster: Cluster, ledger: Ledger, before: Map<string, number>, logBefore: Map<string, number>): Promise<NodeCount[]> {
  const after = await cluster.requestsTotal();
  const byId = new Map(ledger.entries.map((e) => [e.id, e]));
  return cluster.nodes.map((node) => {
    const logged = node.finished.slice(logBefore.get(node.name) ?? 0);
    const fromMetrics = after.has(node.name) ? after.get(node.name)! - (before.get(node.name) ?? 0) : undefined;
    // A WebSocket turn answered only by the drain's go-away never reached the node's runner.
    const entries = ledger.entries.filter((e) => e.replica === node.name && e.detail !== notRun);
    const loggedIds = new Set(logged.map((f) => f.reqId));
    const elsewhere = logged.filter((f) => f.api !== 'responses_ws' && byId.get(f.reqId!)?.replica !== node.name);
    return {
      node: node.name,
      counted: fromMetrics ?? logged.length,
      source: fromMetrics === undefined ? 'log' : 'metrics',
      ledger: entries.length,
      duplicates: elsewhere.filter((f) => byId.get(f.reqId!)?.replica !== undefined).length,
      detail: {
        fromLog: logged.length,
        notLogged: entries.filter((e) => e.transport === 'http' && !loggedIds.has(e.id)).map((e) => `${e.id}:${e.outcome}`),
        loggedNotAttributed: elsewhere.map((f) => ({ ...f, ledger: byId.get(f.reqId!) })),
        logged: tally(logged.map((f) => `${f.api}:${f.status}:${f.outcome}`)),
        ledger: tally(entries.map((e) => `${e.transport}:${e.outcome}${e.outcome === 'ok' || !e.detail ? '' : `:${e.detail.slice(0, 60)}`}`)),
      },
    };
  });
}

function tally(keys: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/** A node's count for the report line. */
export function brief(c: NodeCount): Pick<NodeCount, 'node' | 'counted' | 'source' | 'ledger' | 'duplicates'> {
  return { node: c.node, counted: c.counted, source: c.source, ledger: c.ledger, duplicates: c.duplicates };
}

/** Log lines per node now, the baseline of `countersAgainstLedger`. */
export function logCounts(cluster: Cluster): Map<string, number> {
  return new Map(cluster.nodes.map((n) => [n.name, n.finished.length]));
}

/** `promise`, or a rejection naming `what` after `ms`: every wait of a scenario is bounded. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

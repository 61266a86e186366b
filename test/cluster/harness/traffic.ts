import { setTimeout as delay } from 'node:timers/promises';
import { chatTurn, outputText, WsClient, type ChatMessage } from './clients.js';
import type { Cluster } from './Cluster.js';
import { inputMessage, openingText, userText, within } from './conversation.js';
import type { Ledger } from './Ledger.js';

/** A WebSocket client that opened a new socket for its session, and how long that took. */
export interface Reconnect {
  readonly session: string;
  readonly from: string | undefined;
  readonly to: string | undefined;
  /** From the old socket's `websocket_connection_limit_reached` (else its close) to the new socket's open. */
  readonly ms: number;
  /** How the old socket ended: the drain's event and close code, or a plain close. */
  readonly cause: string;
  /** When the new socket opened. */
  readonly atMs: number;
}

/** Options shared by the looping clients. */
export interface LoopOptions {
  readonly cluster: Cluster;
  readonly ledger: Ledger;
  readonly session: string;
  readonly maxTokens: number;
  readonly deadlineMs: number;
  /** Loops until this returns true (checked before each turn), or `maxTurns` turns were sent. */
  readonly isDone: () => boolean;
  readonly maxTurns: number;
  /** Pause between turns, as a person or an agent would take (not a wait for anything). */
  readonly pauseMs: number;
}

/**
 * A client holding one conversation over HTTP: each turn sends the whole history with the
 * session header; a refused turn is sent again after its Retry-After (at most 1 s here), any
 * other failure is sent again at once (the ledger keeps every attempt).
 */
export async function httpLoop(options: LoopOptions): Promise<void> {
  const messages: ChatMessage[] = [{ role: 'system', content: openingText }];
  let turn = 1;
  for (let sent = 0; sent < options.maxTurns && !options.isDone(); sent++) {
    const user: ChatMessage = { role: 'user', content: userText(options.session, turn) };
    const result = await chatTurn(options.cluster.url, {
      ledger: options.ledger,
      session: options.session,
      key: options.cluster.keyOf(options.session),
      messages: [...messages, user],
      maxTokens: options.maxTokens,
      deadlineMs: options.deadlineMs,
    });
    if (result.entry.outcome === 'ok') {
      messages.push(user, { role: 'assistant', content: result.text });
      turn++;
      await delay(options.pauseMs);
    } else if (result.retryAfterS !== undefined) {
      await delay(Math.min(1, result.retryAfterS) * 1000);
    }
  }
}

/**
 * A client holding one conversation over the Responses WebSocket (store: false, each turn
 * continuing the previous response on the socket). When its socket ends (the drain's
 * `websocket_connection_limit_reached`, a close) or refuses a turn with 503, it opens a new one
 * for the same session through the balancer, which may send it to another node, and starts the
 * chain again from the whole history, as a client must on a node that never saw the session.
 */
export async function wsLoop(options: LoopOptions & { readonly reconnects: Reconnect[]; readonly sockets: Set<WsClient> }): Promise<void> {
  const history: unknown[] = [];
  let socket: WsClient | undefined;
  let previous: string | undefined;
  let turn = 1;
  let refusedAtMs: number | undefined;
  let ended: { from: string | undefined; atMs: number; cause: string } | undefined;
  try {
    for (let sent = 0; sent < options.maxTurns && !options.isDone(); sent++) {
      if (!socket || !socket.isOpen || refusedAtMs !== undefined) {
        if (socket) {
          if (socket.limitReachedAtMs !== undefined) {
            // The drain's event comes with a close (1001) right behind it; wait for that, briefly.
            await socket.waitClosed(5_000);
            ended = { from: socket.replica, atMs: socket.limitReachedAtMs, cause: `websocket_connection_limit_reached, close ${socket.closed?.code}` };
          } else if (refusedAtMs !== undefined) {
            ended = { from: socket.replica, atMs: refusedAtMs, cause: 'turn refused with 503' };
          } else {
            ended = { from: socket.replica, atMs: socket.closed?.atMs ?? performance.now(), cause: `close ${socket.closed?.code}` };
          }
          socket.close();
          options.sockets.delete(socket);
          socket = undefined;
          refusedAtMs = undefined;
        }
        try {
          socket = await WsClient.open(options.cluster.url, { session: options.session, key: options.cluster.keyOf(options.session), timeoutMs: 5_000 });
        } catch {
          await delay(100);
          continue;
        }
        options.sockets.add(socket);
        if (ended) options.reconnects.push({ session: options.session, from: ended.from, to: socket.replica, ms: Math.round(socket.openedAtMs - ended.atMs), cause: ended.cause, atMs: socket.openedAtMs });
        ended = undefined;
        previous = undefined;
      }
      const user = inputMessage(turn === 1 ? `${openingText}\n${userText(options.session, turn)}` : userText(options.session, turn));
      const { entry, response } = await socket.turn({
        ledger: options.ledger,
        input: previous ? [user] : [...history, user],
        previousResponseId: previous,
        maxTokens: options.maxTokens,
        deadlineMs: options.deadlineMs,
      });
      if (entry.outcome === 'ok') {
        history.push(user, { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: outputText(response) }] });
        previous = response!.id;
        turn++;
        await delay(options.pauseMs);
      } else {
        previous = undefined;
        if (entry.outcome === 'refused') {
          refusedAtMs = entry.endMs;
          await delay(100);
        }
      }
    }
  } finally {
    if (socket) {
      socket.close();
      options.sockets.delete(socket);
    }
  }
}

/** Loops on every session of `http` and `ws` (sessions by node), with what the scenarios read back. */
export function startTraffic(options: {
  readonly cluster: Cluster;
  readonly ledger: Ledger;
  readonly http: ReadonlyMap<string, readonly string[]>;
  readonly ws: ReadonlyMap<string, readonly string[]>;
  readonly isDone: () => boolean;
  readonly deadlineMs: number;
}): { readonly done: Promise<unknown>; readonly reconnects: Reconnect[]; readonly sockets: Set<WsClient> } {
  const reconnects: Reconnect[] = [];
  const sockets = new Set<WsClient>();
  const loop = { cluster: options.cluster, ledger: options.ledger, maxTokens: 8, deadlineMs: options.deadlineMs, isDone: options.isDone, maxTurns: 300, pauseMs: 20 };
  const done = Promise.all([
    ...[...options.http.values()].flat().map((session) => httpLoop({ ...loop, session })),
    ...[...options.ws.values()].flat().map((session) => wsLoop({ ...loop, session, reconnects, sockets })),
  ]);
  return { done, reconnects, sockets };
}

/** Answered requests per session that started after `sinceMs`, for "every session had N answers since". */
export function okSince(ledger: Ledger, sinceMs: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of ledger.entries) if (e.outcome === 'ok' && e.startMs > sinceMs) counts.set(e.session, (counts.get(e.session) ?? 0) + 1);
  return counts;
}

/**
 * When a scenario's traffic may stop: `limitMs` from now, or once the event `since()` returns has
 * happened (a node gone, marked down) and every session of `groups` has had two answers since.
 */
export function settledOrTimedOut(ledger: Ledger, groups: ReadonlyArray<ReadonlyMap<string, readonly string[]>>, limitMs: number, since: () => number | undefined): () => boolean {
  const sessions = groups.flatMap((g) => [...g.values()].flat());
  const end = performance.now() + limitMs;
  return () => {
    const at = since();
    return performance.now() > end || (at !== undefined && sessions.every((s) => (okSince(ledger, at).get(s) ?? 0) >= 2));
  };
}

/**
 * One long generation over HTTP and one over a WebSocket (sessions chosen to hash to the same
 * node), resolved once both stream; the streams' ends and the socket, for a failure scenario.
 */
export async function startLongStreams(cluster: Cluster, ledger: Ledger, options: { httpSession: string; wsSession: string; deadlineMs: number }) {
  const { httpSession, wsSession, deadlineMs } = options;
  let running = 0;
  let onRunning: () => void = () => undefined;
  const bothRunning = new Promise<void>((resolve) => (onRunning = () => ++running === 2 && resolve()));
  const messages: ChatMessage[] = [{ role: 'system', content: openingText }, { role: 'user', content: 'Write a long essay.' }];
  const longStream = chatTurn(cluster.url, { ledger, session: httpSession, key: cluster.keyOf(httpSession), messages, maxTokens: 7_000, deadlineMs, onFirstDelta: onRunning });
  const socket = await WsClient.open(cluster.url, { session: wsSession, key: cluster.keyOf(wsSession), timeoutMs: 10_000 });
  try {
    const longTurn = socket.turn({ ledger, input: [inputMessage(`${openingText}\nWrite a long essay.`)], maxTokens: 7_000, deadlineMs, onFirstDelta: onRunning });
    await within(bothRunning, 20_000, 'the long streams started');
    return { longStream, longTurn, socket };
  } catch (err) {
    socket.terminate();
    throw err;
  }
}

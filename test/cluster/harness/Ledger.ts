/**
 * How a request ended, from the client's side:
 * - `ok`: the whole answer arrived.
 * - `refused`: 503 with Retry-After before any byte of an answer (over HTTP) or as the turn's only
 *   event (over a WebSocket): nothing ran, the client may send it again.
 * - `terminal`: the stream ended with its protocol's terminal event (an error chunk,
 *   `response.incomplete` or `response.failed`): the client knows it ended.
 * - `cut`: the connection closed or reset without a terminal event.
 * - `failed`: any other status (a balancer's own 502/503/504, ...), or no answer within the deadline.
 * The first three are the outcomes a drain may produce; `cut` and `failed` are lost requests.
 */
export type Outcome = 'ok' | 'refused' | 'terminal' | 'cut' | 'failed';

/** One request as the client saw it. */
export interface Entry {
  readonly id: string;
  readonly transport: 'http' | 'ws';
  readonly session: string;
  /** `x-flint-replica` of the answer (HTTP) or of the socket's handshake (WebSocket). */
  readonly replica: string | undefined;
  readonly outcome: Outcome;
  readonly status?: number;
  readonly detail?: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly promptTokens?: number;
  readonly cachedTokens?: number;
}

const delivered: ReadonlySet<Outcome> = new Set(['ok', 'refused', 'terminal']);

/** Every request of a scenario, one entry each, by the id the client gave it. */
export class Ledger {
  readonly entries: Entry[] = [];
  #seq = 0;

  /** A new request id (sent as `x-request-id`, which Flint logs as the request's id). */
  nextId(prefix: string): string {
    return `${prefix}-${++this.#seq}`;
  }

  add(entry: Entry): Entry {
    if (this.entries.some((e) => e.id === entry.id)) throw new Error(`request id ${entry.id} used twice`);
    this.entries.push(entry);
    return entry;
  }

  /** Requests that ended in neither of the outcomes a drain may produce. */
  lost(): Entry[] {
    return this.entries.filter((e) => !delivered.has(e.outcome));
  }

  count(filter: (e: Entry) => boolean = () => true): number {
    return this.entries.filter(filter).length;
  }

  /** Outcome counts, for the scenario's report line. */
  outcomes(): Record<Outcome, number> {
    const counts: Record<Outcome, number> = { ok: 0, refused: 0, terminal: 0, cut: 0, failed: 0 };
    for (const e of this.entries) counts[e.outcome]++;
    return counts;
  }

  /** Replica switches per session: how often consecutive answered requests of a session came from different nodes. */
  switches(filter: (e: Entry) => boolean = () => true): Map<string, number> {
    const last = new Map<string, string>();
    const switches = new Map<string, number>();
    for (const e of [...this.entries].filter(filter).sort((a, b) => a.startMs - b.startMs)) {
      if (e.replica === undefined) continue;
      const previous = last.get(e.session);
      switches.set(e.session, (switches.get(e.session) ?? 0) + (previous !== undefined && previous !== e.replica ? 1 : 0));
      last.set(e.session, e.replica);
    }
    return switches;
  }
}

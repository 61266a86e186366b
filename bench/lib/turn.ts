/** What a client observed during one streamed generation, for every transport. */
import type { Usage } from '../../src/core/types.js';

/** Token counts as the APIs report them: the same shape Flint uses inside. */
export type { Usage };

export interface StreamTurn {
  /** Just before the request left the client. */
  readonly startedAt: number;
  /** First event carrying text or the end of generation: the first token as the client sees it. */
  readonly firstTokenAt: number | undefined;
  /** Arrival time of each event that carried text (several tokens may share one). */
  readonly contentTimes: number[];
  readonly contentLengths: number[];
  readonly text: string;
  readonly usage: Usage | undefined;
  readonly finishReason: string | undefined;
  readonly endedAt: number;
}

export function ttftMs(turn: { startedAt: number; firstTokenAt: number | undefined }): number {
  return turn.firstTokenAt === undefined ? Number.NaN : turn.firstTokenAt - turn.startedAt;
}

/** Decode rate between the first and the last token: (tokens - 1) / elapsed. */
export function decodeRate(tokens: number, firstAt: number | undefined, lastAt: number | undefined): number {
  if (tokens < 2 || firstAt === undefined || lastAt === undefined || lastAt <= firstAt) return Number.NaN;
  return (tokens - 1) / ((lastAt - firstAt) / 1000);
}

/** Decode rate of a streamed turn, from its first to its last text event and the reported token count. */
export function streamDecodeRate(turn: StreamTurn): number {
  return decodeRate(turn.usage?.completionTokens ?? 0, turn.contentTimes[0], turn.contentTimes.at(-1));
}

/**
 * Token arrival times estimated from text events: an event's share of the completion tokens
 * is its share of the text (events may carry several tokens when the worker coalesces them).
 */
export function estimatedTokenTimes(turn: StreamTurn): number[] {
  const total = turn.usage?.completionTokens ?? turn.contentTimes.length;
  const chars = turn.contentLengths.reduce((a, b) => a + b, 0);
  const times: number[] = [];
  let owed = 0;
  turn.contentTimes.forEach((t, i) => {
    owed += chars > 0 ? (turn.contentLengths[i] / chars) * total : total / turn.contentTimes.length;
    while (owed >= 1 - 1e-9) {
      times.push(t);
      owed -= 1;
    }
  });
  while (times.length < total && turn.contentTimes.length > 0) times.push(turn.contentTimes.at(-1)!);
  return times;
}

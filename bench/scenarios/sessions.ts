/**
 * WebSocket sessions beyond one socket and one lane.
 *
 * Reconnect: a named session (`x-flint-session`) runs a few warm turns chained with
 * `previous_response_id`, closes its socket, opens a new one with the same name and continues
 * with `previous_response_id`. Compares the TTFT of that first turn on the new socket (from its
 * `response.create`, handshake timed apart) with the warm turns before it. Goal: within 2x.
 *
 * Lanes: one socket generates `laneTokens` tokens twice, one lane after the other, then twice
 * at once on two `stream_id` lanes (two slots). Reports the aggregate tok/s of each and their
 * ratio (two lanes run on two slots decoded in step; on CPU they share the same cores).
 */
import type { Deadline } from '../lib/clock.js';
import { now } from '../lib/clock.js';
import { codeText, nonce } from '../lib/prompts.js';
import { goal, num, table, times, type Goal } from '../lib/report.js';
import { probeResponsesSocket, ResponsesSocket, type ResponsesTurn } from '../lib/responsesClient.js';
import { summarize } from '../lib/stats.js';
import { ttftMs } from '../lib/turn.js';
import { skipped, type BenchContext, type Scenario, type ScenarioResult } from '../lib/types.js';
import { openSocket, toWsUrl, whenOpen } from '../lib/ws.js';

const timeoutMs = 300_000;
const warmTurns = 5;
const instructionsChars = 4_000;
const laneTokens = 256;

interface ReconnectSample {
  readonly run: number;
  readonly warmTtftMs: number[];
  readonly handshakeMs: number;
  readonly reconnectTtftMs: number;
  readonly reconnectEvaluated: number;
  readonly promptTokens: number;
}

interface LaneSample {
  readonly run: number;
  readonly oneLaneTokS: number;
  readonly twoLanesTokS: number;
}

const user = (content: string) => ({ type: 'message', role: 'user', content });

/** One turn; the response id and TTFT. */
async function turn(socket: ResponsesSocket, body: Record<string, unknown>): Promise<ResponsesTurn> {
  const t = await socket.create({ max_output_tokens: 8, ...body }, timeoutMs);
  if (!t.responseId) throw new Error('a response without id');
  return t;
}

/** Responses on `lanes` stream_ids of one socket at once; total output tokens over wall seconds. */
async function lanesThroughput(baseUrl: string, lanes: number, tokens: number): Promise<number> {
  const socket = openSocket(toWsUrl(baseUrl, '/v1/responses'));
  await whenOpen(socket, 10_000);
  try {
    const started = now();
    const output = await new Promise<number>((resolve, reject) => {
      let done = 0;
      let total = 0;
      const timer = setTimeout(() => reject(new Error(`lanes: no end within ${timeoutMs} ms`)), timeoutMs);
      socket.on('message', (data) => {
        const text = data.toString();
        if (text.startsWith('{"type":"response.output_text.delta"')) return;
        const event = JSON.parse(text) as { type: string; response?: { usage?: { output_tokens: number } }; error?: { message?: string } };
        if (event.type === 'error' || event.type === 'response.failed') {
          clearTimeout(timer);
          reject(new Error(`lanes: ${text.slice(0, 300)}`));
        } else if (event.type === 'response.completed' || event.type === 'response.incomplete') {
          total += event.response?.usage?.output_tokens ?? 0;
          if (++done === lanes) {
            clearTimeout(timer);
            resolve(total);
          }
        }
      });
      const lead = nonce();
      for (let lane = 0; lane < lanes; lane++) {
        socket.send(JSON.stringify({ type: 'response.create', model: 'bench', store: false, temperature: 0, stream_id: `lane-${lane}`, input: [user(`${lead} lane ${lane}: write code.`)], max_output_tokens: tokens }));
      }
    });
    return output / ((now() - started) / 1000);
  } finally {
    socket.close();
  }
}

export const sessionsScenario: Scenario = {
  name: 'sessions',
  title: 'WebSocket sessions: reconnect and stream_id lanes',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const runs = ctx.runs(3, 6);
    const server = await ctx.startFlint({ contextSize: ctx.contextFor(8192), slots: 2 });
    const reconnects: ReconnectSample[] = [];
    const lanes: LaneSample[] = [];
    const notes: string[] = [];
    try {
      const probe = await probeResponsesSocket(server.url);
      if (!probe.ok) return skipped(this, `no WebSocket endpoint (${probe.reason})`);
      for (let run = 0; run < runs; run++) {
        if (deadline.expired) {
          notes.push(`Stopped at the time limit after ${run} runs.`);
          break;
        }
        const session = { 'x-flint-session': `bench-${process.pid}-${run}` };
        const instructions = `${nonce()} ${codeText(run + 1, instructionsChars)}`;
        const first = await ResponsesSocket.connect(server.url, 10_000, session);
        let previous: ResponsesTurn;
        const warm: number[] = [];
        try {
          previous = await turn(first, { instructions, input: [user('Start.')] });
          for (let i = 0; i < warmTurns; i++) {
            previous = await turn(first, { instructions, previous_response_id: previous.responseId, input: [user(`Step ${i}: go on.`)] });
            warm.push(ttftMs(previous));
          }
        } finally {
          first.close();
        }
        // Let the server see the close (the session is kept from then on).
        await new Promise((resolve) => setTimeout(resolve, 50));
        const handshakeStarted = now();
        const second = await ResponsesSocket.connect(server.url, 10_000, session);
        const handshakeMs = now() - handshakeStarted;
        try {
          const next = await turn(second, { instructions, previous_response_id: previous.responseId, input: [user('Back again: go on.')] });
          const usage = next.usage!;
          reconnects.push({ run, warmTtftMs: warm, handshakeMs, reconnectTtftMs: ttftMs(next), reconnectEvaluated: usage.promptTokens - usage.cachedTokens, promptTokens: usage.promptTokens });
        } finally {
          second.close();
        }

        const oneLaneTokS = await lanesThroughput(server.url, 1, laneTokens * 2);
        const twoLanesTokS = await lanesThroughput(server.url, 2, laneTokens);
        lanes.push({ run, oneLaneTokS, twoLanesTokS });
      }
    } finally {
      await server.close();
    }

    const warmMedian = summarize(reconnects.flatMap((r) => r.warmTtftMs)).median;
    const reconnectMedian = summarize(reconnects.map((r) => r.reconnectTtftMs)).median;
    const handshakeMedian = summarize(reconnects.map((r) => r.handshakeMs)).median;
    const oneLane = summarize(lanes.map((l) => l.oneLaneTokS)).median;
    const twoLanes = summarize(lanes.map((l) => l.twoLanesTokS)).median;
    const goals: Goal[] = [goal('sessions', 'reconnect TTFT / warm-turn TTFT', reconnectMedian / warmMedian, '<=', 2, 'x')];
    const markdown = [
      `Named session (\`x-flint-session\`), ${warmTurns} warm turns on ~${instructionsChars} characters of instructions, socket closed, a new socket continues with \`previous_response_id\`; ${reconnects.length} runs. Then ${laneTokens * 2} tokens on one lane vs ${laneTokens} on each of two lanes of one socket.`,
      '',
      table(
        ['figure', 'median'],
        [
          ['warm turn TTFT', `${num(warmMedian, 2)} ms`],
          ['first turn on the new socket, TTFT', `${num(reconnectMedian, 2)} ms (${times(reconnectMedian / warmMedian, 2)} warm)`],
          ['new socket handshake', `${num(handshakeMedian, 2)} ms`],
          ['tokens evaluated by that turn', `${num(summarize(reconnects.map((r) => r.reconnectEvaluated)).median, 0)} of ${num(summarize(reconnects.map((r) => r.promptTokens)).median, 0)}`],
          ['one lane, aggregate', `${num(oneLane, 0)} tok/s`],
          ['two lanes at once, aggregate', `${num(twoLanes, 0)} tok/s (${times(twoLanes / oneLane, 2)})`],
        ],
      ),
      ...notes.map((n) => `\n${n}`),
    ].join('\n');
    return {
      name: this.name,
      title: this.title,
      status: notes.length ? 'partial' : 'ok',
      note: notes.join(' ') || undefined,
      settings: { warmTurns, instructionsChars, laneTokens, slots: 2 },
      samples: { reconnects, lanes },
      stats: { warmMedian, reconnectMedian, handshakeMedian, oneLane, twoLanes },
      markdown,
      goals,
    };
  },
};

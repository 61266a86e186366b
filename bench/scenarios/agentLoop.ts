/**
 * A 20-turn agent loop whose context grows every turn by the model's text, a tool call, the
 * tool's output (a few hundred characters) and a user follow-up. Per turn and transport:
 * prompt tokens, cached tokens, evaluated = prompt - cached, new = prompt - (previous prompt +
 * previous completion), i.e. the tokens the previous turn did not already hold, and TTFT.
 * Goals: evaluated <= 1.05 x new; turn-20 TTFT within 1.2x of turn 2; gateway overhead per turn
 * (its TTFT minus the raw engine's TTFT for the same context) <= 1 ms on the WebSocket and <= 2 ms
 * on HTTP; the overhead at the last turn within 0.5 ms of turn 2's; WebSocket overhead <= 0.2x
 * the HTTP overhead.
 *
 * Transports, each with its own Flint (one slot), so conversations cannot share a slot:
 *   raw   one sequence; the whole conversation rendered each turn, the common token prefix kept
 *   chat  POST /v1/chat/completions, the full conversation every turn
 *   ws    Responses WebSocket, chained with previous_response_id, only new items sent
 *   resp  POST /v1/responses (SSE), the full conversation every turn
 * ws and resp run only when their endpoints answer a probe.
 */
import type { LlamaContextSequence } from 'node-llama-cpp';
import { streamChat } from '../lib/chatClient.js';
import type { Deadline } from '../lib/clock.js';
import { AgentConversation, userHistory, userMessages } from '../lib/conversation.js';
import type { FlintServer } from '../lib/flint.js';
import { nonce } from '../lib/prompts.js';
import { rawGenerate, type RawEngine } from '../lib/rawEngine.js';
import { goal, num, table, times, type Goal } from '../lib/report.js';
import { probeResponsesHttp, probeResponsesSocket, ResponsesSocket, streamResponsesHttp } from '../lib/responsesClient.js';
import { ratio, summarize } from '../lib/stats.js';
import { lineChart } from '../lib/svg.js';
import { ttftMs, type StreamTurn } from '../lib/turn.js';
import type { BenchContext, Scenario, ScenarioResult } from '../lib/types.js';

const turnsWanted = 20;
const maxTokensPerTurn = 16;
const toolOutputChars = 320;
const requestTimeoutMs = 300_000;

type Transport = 'raw' | 'chat' | 'ws' | 'resp';
const labels: Record<Transport, string> = {
  raw: 'raw node-llama-cpp',
  chat: 'HTTP chat completions',
  ws: 'Responses WebSocket',
  resp: 'Responses HTTP (SSE)',
};
const colors: Record<Transport, string> = { raw: '#222222', chat: '#1f77b4', ws: '#d62728', resp: '#2ca02c' };

interface TurnSample {
  readonly run: number;
  readonly turn: number;
  readonly transport: Transport;
  readonly ttftMs: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
  readonly evaluated: number;
  /** Tokens the previous turn did not hold: prompt - (previous prompt + previous completion). */
  readonly newTokens: number;
  /** The completion's text had U+FFFD: bytes that were not valid UTF-8, which no client can send back as they were. */
  readonly lossyText: boolean;
  /** Raw only: rendering the whole conversation and tokenizing it (not in its TTFT; Flint does it per request). */
  readonly renderMs: number;
}

/** One conversation on one transport: sends a turn, returns what the client saw. */
interface Driver {
  readonly transport: Transport;
  readonly conversation: AgentConversation;
  turn(): Promise<{ ttftMs: number; renderMs: number; promptTokens: number; cachedTokens: number; completionTokens: number; text: string }>;
  close(): void;
}

function fromStream(turn: StreamTurn) {
  if (!turn.usage) throw new Error('no usage in the stream');
  return { ttftMs: ttftMs(turn), renderMs: Number.NaN, ...turn.usage, text: turn.text };
}

export const agentLoopScenario: Scenario = {
  name: 'agent-loop',
  title: 'Agent loop (growing context, tool calls)',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const raw = await ctx.raw();
    const runs = ctx.runs(4, 6);
    const contextSize = Math.min(ctx.maxContext, 16_384);
    const servers: Partial<Record<Exclude<Transport, 'raw'>, FlintServer>> = {};
    const context = await raw.createContext(contextSize, 1);
    const sequence = context.getSequence();
    const samples: TurnSample[] = [];
    const notes: string[] = [];
    let stoppedEarly = false;
    const dropped = new Set<Transport>();
    try {
      servers.chat = await ctx.startFlint({ contextSize, slots: 1 });
      const [wsProbe, respProbe] = [await probeResponsesSocket(servers.chat.url), await probeResponsesHttp(servers.chat.url)];
      if (wsProbe.ok) servers.ws = await ctx.startFlint({ contextSize, slots: 1 });
      else notes.push(`Responses WebSocket skipped: no WebSocket endpoint (${wsProbe.reason}).`);
      if (respProbe.ok) servers.resp = await ctx.startFlint({ contextSize, slots: 1 });
      else notes.push(`Responses HTTP skipped: no endpoint (${respProbe.reason}).`);
      for (const note of notes) ctx.log(`agent-loop: ${note}`);
      // One short request per side and path first, so no transport's turn 1 pays for first-use costs.
      await rawGenerate(raw, sequence, userHistory('warm up'), { maxTokens: 4, reuse: true });
      await streamChat(servers.chat.url, { messages: userMessages('warm up'), max_tokens: 4 }, requestTimeoutMs);
      if (servers.ws) await probeResponsesSocket(servers.ws.url);
      if (servers.resp) await probeResponsesHttp(servers.resp.url);

      for (let run = 0; run < runs && !stoppedEarly; run++) {
        // The same conversation on every transport (same first words), each in its own slot.
        const lead = nonce();
        const drivers: Driver[] = [rawDriver(raw, sequence, lead)];
        if (!dropped.has('chat')) drivers.push(chatDriver(servers.chat.url, lead));
        if (servers.ws && !dropped.has('ws')) drivers.push(await wsDriver(servers.ws.url, lead));
        if (servers.resp && !dropped.has('resp')) drivers.push(respDriver(servers.resp.url, lead));
        const previous = new Map<Transport, { prompt: number; completion: number }>();
        try {
          for (let turn = 1; turn <= turnsWanted; turn++) {
            if (deadline.expired) {
              stoppedEarly = true;
              notes.push(`Stopped at the time limit in run ${run + 1}, turn ${turn}.`);
              break;
            }
            const projected = raw.render(drivers[0].conversation.rawHistory()).length + maxTokensPerTurn + 8;
            if (projected > contextSize) {
              notes.push(`Run ${run + 1} ended after turn ${turn - 1}: the next turn (${projected} tokens) would not fit the ${contextSize}-token context.`);
              break;
            }
            // Rotate who goes first each turn, so no transport always follows the same one.
            const rotated = [...drivers.slice(turn % drivers.length), ...drivers.slice(0, turn % drivers.length)];
            for (const driver of rotated) {
              let result: Awaited<ReturnType<Driver['turn']>>;
              try {
                result = await driver.turn();
              } catch (err) {
                // A gateway transport that breaks mid-run is reported and dropped; the others go on.
                if (driver.transport === 'raw') throw err;
                notes.push(`${labels[driver.transport]} failed in run ${run + 1}, turn ${turn}: ${(err as Error).message}`);
                ctx.log(`agent-loop: ${notes.at(-1)}`);
                drivers.splice(drivers.indexOf(driver), 1);
                dropped.add(driver.transport);
                driver.close();
                continue;
              }
              driver.conversation.addTurn(result.text);
              const before = previous.get(driver.transport);
              const newTokens = before ? result.promptTokens - (before.prompt + before.completion) : result.promptTokens;
              previous.set(driver.transport, { prompt: result.promptTokens, completion: result.completionTokens });
              samples.push({
                run,
                turn,
                transport: driver.transport,
                ttftMs: result.ttftMs,
                promptTokens: result.promptTokens,
                cachedTokens: result.cachedTokens,
                completionTokens: result.completionTokens,
                evaluated: result.promptTokens - result.cachedTokens,
                newTokens,
                lossyText: result.text.includes('\uFFFD'),
                renderMs: result.renderMs,
              });
            }
            const line = drivers.map((d) => `${d.transport} ${num(samples.find((s) => s.run === run && s.turn === turn && s.transport === d.transport)?.ttftMs, 2)}`).join(', ');
            ctx.log(`agent-loop run ${run + 1}/${runs} turn ${turn}: TTFT ms ${line}`);
          }
        } finally {
          for (const d of drivers) d.close();
        }
      }
    } finally {
      for (const server of Object.values(servers)) await server.close();
      await context.dispose();
    }
    return report(this, samples, notes, stoppedEarly, { runs, contextSize, maxTokensPerTurn, toolOutputChars, turnsWanted });
  },
};

function rawDriver(raw: RawEngine, sequence: LlamaContextSequence, lead: string): Driver {
  const conversation = new AgentConversation(lead, toolOutputChars);
  return {
    transport: 'raw',
    conversation,
    async turn() {
      const r = await rawGenerate(raw, sequence, conversation.rawHistory(), { maxTokens: maxTokensPerTurn, reuse: true });
      return { ttftMs: r.engineTtftMs, renderMs: r.renderMs, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens, text: r.text };
    },
    close() {},
  };
}

function chatDriver(url: string, lead: string): Driver {
  const conversation = new AgentConversation(lead, toolOutputChars);
  return {
    transport: 'chat',
    conversation,
    turn: async () => fromStream(await streamChat(url, { messages: conversation.chatMessages(), max_tokens: maxTokensPerTurn }, requestTimeoutMs)),
    close() {},
  };
}

async function wsDriver(url: string, lead: string): Promise<Driver> {
  const conversation = new AgentConversation(lead, toolOutputChars);
  const socket = await ResponsesSocket.connect(url, 10_000);
  let previousId: string | undefined;
  return {
    transport: 'ws',
    conversation,
    async turn() {
      const turn = await socket.create({ ...conversation.responsesIncremental(previousId), max_output_tokens: maxTokensPerTurn }, requestTimeoutMs);
      previousId = turn.responseId;
      return fromStream(turn);
    },
    close: () => socket.close(),
  };
}

function respDriver(url: string, lead: string): Driver {
  const conversation = new AgentConversation(lead, toolOutputChars);
  return {
    transport: 'resp',
    conversation,
    turn: async () => fromStream(await streamResponsesHttp(url, { ...conversation.responsesFull(), max_output_tokens: maxTokensPerTurn }, requestTimeoutMs)),
    close() {},
  };
}

function report(
  scenario: Scenario,
  samples: readonly TurnSample[],
  notes: readonly string[],
  stoppedEarly: boolean,
  settings: Record<string, unknown> & { runs: number },
): ScenarioResult {
  const transports = (['raw', 'chat', 'ws', 'resp'] as const).filter((t) => samples.some((s) => s.transport === t));
  const turns = [...new Set(samples.map((s) => s.turn))].sort((a, b) => a - b);
  const lastTurn = turns.at(-1) ?? 0;
  const of = (t: Transport, turn: number) => samples.filter((s) => s.transport === t && s.turn === turn);
  const medianTtft = (t: Transport, turn: number) => summarize(of(t, turn).map((s) => s.ttftMs)).median;
  const rawSample = (s: TurnSample) => samples.find((r) => r.transport === 'raw' && r.run === s.run && r.turn === s.turn);
  const goals: Goal[] = [];
  const summaryRows: string[][] = [];
  const overheads = new Map<Transport, number>();
  for (const t of transports) {
    const later = samples.filter((s) => s.transport === t && s.turn >= 2);
    const sumEvaluated = later.reduce((a, s) => a + s.evaluated, 0);
    const sumNew = later.reduce((a, s) => a + s.newTokens, 0);
    const worst = Math.max(...later.map((s) => s.evaluated / Math.max(1, s.newTokens)));
    const growth = ratio(medianTtft(t, lastTurn), medianTtft(t, 2));
    // Against the best one process can do with the same conversation (raw keeps the longest common prefix).
    const sumRawEvaluated = later.reduce((a, s) => a + (rawSample(s)?.evaluated ?? NaN), 0);
    const versusRaw = ratio(sumEvaluated, sumRawEvaluated);
    // Overhead: this transport's TTFT minus the raw engine's TTFT for the same run and turn.
    const overhead = t === 'raw' ? NaN : summarize(later.map((s) => s.ttftMs - (rawSample(s)?.ttftMs ?? NaN))).median;
    overheads.set(t, overhead);
    summaryRows.push([
      labels[t],
      num(medianTtft(t, 1), 2),
      num(medianTtft(t, 2), 2),
      num(medianTtft(t, lastTurn), 2),
      times(growth, 2),
      times(ratio(sumEvaluated, sumNew), 3),
      times(worst, 2),
      t === 'raw' ? '' : times(versusRaw, 3),
      num(overhead, 2),
    ]);
    if (later.length > 0) {
      goals.push(goal('agent-loop', `${t}: evaluated/new, worst turn`, worst, '<=', 1.05));
      goals.push(goal('agent-loop', `${t}: TTFT turn ${lastTurn}/turn 2`, growth, '<=', 1.2));
      if (t !== 'raw') {
        // WebSocket turns send only what is new: their goal is 1 ms; HTTP parses and matches the whole history: 2 ms.
        goals.push(goal('agent-loop', `${t}: gateway overhead per turn`, overhead, '<=', t === 'ws' ? 1 : 2, ' ms'));
        // Work proportional to the history would make the last turns cost more than the first beyond what raw pays.
        // Medians over five turns at each end (turns 2-6 and the last five), since one turn's difference is mostly noise.
        const overheadOver = (from: number, to: number) =>
          summarize(samples.filter((s) => s.transport === t && s.turn >= from && s.turn <= to).map((s) => s.ttftMs - (rawSample(s)?.ttftMs ?? NaN))).median;
        const overheadGrowth = overheadOver(lastTurn - 4, lastTurn) - overheadOver(2, 6);
        goals.push(goal('agent-loop', `${t}: overhead turns ${lastTurn - 4}-${lastTurn} minus turns 2-6`, overheadGrowth, '<=', 0.5, ' ms'));
        goals.push(goal('agent-loop', `${t}: Σevaluated vs raw (bench check: prefix reuse as good as raw)`, versusRaw, '<=', 1.01));
      }
    }
  }
  const lossy = samples.filter((s) => s.transport === 'raw' && s.lossyText).length;
  const rawTurns = samples.filter((s) => s.transport === 'raw').length;
  const explain =
    lossy > 0
      ? `${lossy} of ${rawTurns} raw completions contained U+FFFD: the model emitted bytes that are not valid UTF-8 (random weights do), so the text a client sends back ` +
        'cannot re-tokenize to the tokens that were generated, and every side re-evaluates the completion from that point. Compare gateway rows with the raw row, which is the best one process can do.'
      : undefined;
  const wsOverRatio = ratio(overheads.get('ws') ?? NaN, overheads.get('chat') ?? NaN);
  if (transports.includes('ws')) goals.push(goal('agent-loop', 'ws overhead / chat overhead', wsOverRatio, '<=', 0.2));

  const perTurnHeaders = ['turn', 'prompt', 'new', 'raw render ms', ...transports.flatMap((t) => [`${t} cached`, `${t} eval`, `${t} TTFT ms`])];
  const perTurnRows = turns.map((turn) => {
    const first = samples.find((s) => s.run === 0 && s.turn === turn && s.transport === 'chat') ?? samples.find((s) => s.turn === turn)!;
    return [
      String(turn),
      String(first.promptTokens),
      String(first.newTokens),
      num(summarize(of('raw', turn).map((s) => s.renderMs)).median, 2),
      ...transports.flatMap((t) => {
        const s = samples.find((x) => x.run === 0 && x.turn === turn && x.transport === t);
        return [num(s?.cachedTokens, 0), num(s?.evaluated, 0), num(medianTtft(t, turn), 2)];
      }),
    ];
  });
  const chart = lineChart({
    title: `Agent loop: TTFT per turn (median of ${settings.runs} run${settings.runs === 1 ? '' : 's'})`,
    xLabel: 'turn',
    yLabel: 'time to first token (ms)',
    series: transports.map((t) => ({ name: labels[t], color: colors[t], dashed: t === 'raw', points: turns.map((turn) => [turn, medianTtft(t, turn)] as const) })),
  });
  const markdown = [
    `${settings.runs} run(s) of up to ${turnsWanted} turns; ${maxTokensPerTurn} generated tokens per turn, then a tool call, a ${toolOutputChars}-character tool output and a user follow-up. ` +
      'evaluated = prompt - cached; new = prompt - (previous prompt + previous completion); raw TTFT is the engine\'s own (prefill and first decode, ' +
      'without rendering the conversation: "raw render" shows that cost, which Flint pays per request); overhead = TTFT - raw TTFT for the same turn (median over turns >= 2).',
    ...[...notes, ...(explain ? [explain] : [])].map((n) => `\n_${n}_`),
    '',
    table(['transport', 'TTFT turn 1 ms', 'turn 2 ms', `turn ${lastTurn} ms`, `turn ${lastTurn}/turn 2`, 'Σevaluated/Σnew', 'worst turn evaluated/new', 'Σevaluated vs raw', 'overhead ms'], summaryRows),
    '',
    transports.includes('ws') ? `WebSocket overhead / HTTP chat overhead: ${times(wsOverRatio, 2)}\n` : '',
    `Per turn (tokens from run 1; TTFT median over runs):`,
    '',
    table(perTurnHeaders, perTurnRows),
    '',
    '![agent loop TTFT per turn](agent-loop-ttft.svg)',
  ].join('\n');
  return {
    name: scenario.name,
    title: scenario.title,
    status: stoppedEarly ? 'partial' : 'ok',
    note: stoppedEarly ? 'stopped at the time limit' : notes.find((n) => n.includes('skipped')),
    settings,
    samples,
    stats: Object.fromEntries(transports.map((t) => [t, { ttftByTurn: turns.map((turn) => medianTtft(t, turn)), overheadMs: overheads.get(t) }])),
    markdown,
    goals,
    files: [{ name: 'agent-loop-ttft.svg', content: chart }],
  };
}

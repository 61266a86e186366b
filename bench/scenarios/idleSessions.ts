/**
 * Idle WebSocket sessions: N Responses sockets opened and left idle (1k, and 10k unless
 * --quick). Reports the gateway's RSS (this process hosts it; the clients live in a child
 * process) before and after, memory per session, and WebSocket ping round trips while the
 * sessions are open. Skipped, and marked so, when the WebSocket endpoint does not answer.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Deadline } from '../lib/clock.js';
import { settledMemory } from '../lib/memory.js';
import { num, table } from '../lib/report.js';
import { probeResponsesSocket } from '../lib/responsesClient.js';
import { summarize } from '../lib/stats.js';
import { skipped, type BenchContext, type Scenario, type ScenarioResult } from '../lib/types.js';
import { toWsUrl } from '../lib/ws.js';

const pingSamples = 200;

interface Row {
  readonly sessions: number;
  readonly open: number;
  readonly failed: number;
  readonly openMs: number;
  readonly rssMiB: number;
  readonly heapMiB: number;
  readonly pingP50: number;
  readonly pingP99: number;
  readonly pingMax: number;
  readonly lastError?: string;
}

/** Sends a command to the client child and waits for the reply of `type`. */
function ask<T>(child: ChildProcess, message: Record<string, unknown>, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`client process: no '${type}' within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (reply: { type?: string }) => {
      if (reply.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(reply as T);
    };
    child.on('message', onMessage);
    child.send(message);
  });
}

export const idleSessionsScenario: Scenario = {
  name: 'idle-sessions',
  title: 'Idle WebSocket sessions',
  async run(ctx: BenchContext, deadline: Deadline): Promise<ScenarioResult> {
    const counts = [...new Set(ctx.options.sessions)].filter((n) => n > 0).sort((a, b) => a - b);
    const most = counts.at(-1) ?? 1;
    // Flint caps sockets in all and per client address; one client address opens them all here.
    const server = await ctx.startFlint({ contextSize: 1024, slots: 1, sections: { websocket: { maxSockets: most + 64, maxSocketsPerKey: most + 64 }, server: { maxConnections: most + 256, maxConnectionsPerIp: most + 256 }, limits: { requestsPerSecond: 0 } } });
    let child: ChildProcess | undefined;
    const rows: Row[] = [];
    let stoppedEarly = false;
    try {
      const probe = await probeResponsesSocket(server.url);
      if (!probe.ok) {
        ctx.log(`idle-sessions skipped: no WebSocket endpoint (${probe.reason})`);
        return skipped(this, `no WebSocket endpoint (${probe.reason})`);
      }
      const url = toWsUrl(server.url, '/v1/responses');
      child = fork(fileURLToPath(new URL('../lib/idleClients.ts', import.meta.url)), [], {
        execArgv: ['--import', import.meta.resolve('tsx')],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const before = await settledMemory();
      for (const total of [1, ...counts]) {
        if (deadline.expired) {
          stoppedEarly = true;
          break;
        }
        const opened = await ask<{ open: number; failed: number; ms: number; lastError?: string }>(child, { type: 'open', url, total }, 'opened', Math.max(60_000, deadline.remainingMs));
        const memory = await settledMemory();
        const pinged = await ask<{ rtts: number[] }>(child, { type: 'ping', samples: pingSamples }, 'pinged', 120_000);
        const rtt = summarize(pinged.rtts);
        rows.push({ sessions: total, open: opened.open, failed: opened.failed, openMs: opened.ms, rssMiB: memory.rssMiB, heapMiB: memory.heapAndExternalMiB, pingP50: rtt.median, pingP99: rtt.p99, pingMax: rtt.max, lastError: opened.lastError });
        ctx.log(`idle-sessions ${total}: ${opened.open} open (${opened.failed} failed), gateway RSS ${num(memory.rssMiB)} MiB, heap+external ${num(memory.heapAndExternalMiB)} MiB, ping p50 ${num(rtt.median, 3)} ms`);
      }
      await ask(child, { type: 'close' }, 'closed', 30_000).catch(() => undefined);
      const base = rows[0];
      const markdown = [
        `Gateway with no session: RSS ${num(before.rssMiB)} MiB, JS heap + external ${num(before.heapAndExternalMiB)} MiB (this process also holds the raw engine's model, which does not change). ` +
          `Per-session cost is from heap + external (RSS keeps pages the heap already had). Ping = WebSocket ping/pong round trip from the client process, ${pingSamples} pings one at a time over the open sessions.`,
        '',
        table(
          ['sessions', 'open', 'failed', 'open time s', 'gateway RSS MiB', 'Δ RSS MiB', 'Δ heap+external MiB', 'KiB per session', 'ping p50 ms', 'ping p99 ms'],
          rows.map((r) => [
            String(r.sessions),
            String(r.open),
            String(r.failed),
            num(r.openMs / 1000, 2),
            num(r.rssMiB),
            num(r.rssMiB - base.rssMiB),
            num(r.heapMiB - base.heapMiB, 2),
            r.sessions > 1 ? num(((r.heapMiB - base.heapMiB) * 1024) / (r.open - base.open || 1), 1) : '—',
            num(r.pingP50, 3),
            num(r.pingP99, 3),
          ]),
        ),
        ...rows.filter((r) => r.lastError).map((r) => `\n_${r.sessions}: last open error: ${r.lastError}_`),
      ].join('\n');
      return {
        name: this.name,
        title: this.title,
        status: stoppedEarly ? 'partial' : rows.some((r) => r.open < r.sessions) ? 'partial' : 'ok',
        note: stoppedEarly ? 'stopped at the time limit' : rows.some((r) => r.open < r.sessions) ? 'not every session could be opened' : undefined,
        settings: { counts, pingSamples },
        samples: rows,
        stats: { before },
        markdown,
        goals: [],
      };
    } finally {
      child?.kill();
      await server.close();
    }
  },
};

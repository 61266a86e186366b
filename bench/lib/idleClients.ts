/**
 * Child process for the idle-sessions scenario: holds N open WebSocket sessions to the gateway
 * and pings them on request. It runs apart from the bench process (which hosts the gateway) so
 * the client's sockets and memory do not count against the gateway's RSS or file descriptors.
 *
 * Parent → child: {type:'open', url, total} | {type:'ping', samples} | {type:'close'}
 * Child → parent: {type:'opened', open, failed, ms, lastError} | {type:'pinged', rtts, open} | {type:'closed'}
 */
import { openSocket, whenOpen, wsOpen, type WsSocket } from './ws.js';

type Command = { type: 'open'; url: string; total: number } | { type: 'ping'; samples: number } | { type: 'close' };

const sockets: WsSocket[] = [];
/** Connections opened at once; more would mostly queue in the server's accept backlog. */
const concurrentOpens = 100;

async function open(url: string, total: number): Promise<void> {
  const started = performance.now();
  let failed = 0;
  let lastError: string | undefined;
  while (sockets.length < total && failed < 100) {
    const batch = Math.min(concurrentOpens, total - sockets.length);
    const results = await Promise.allSettled(
      Array.from({ length: batch }, async () => {
        const socket = openSocket(url, { handshakeTimeout: 30_000 });
        socket.on('error', () => undefined);
        await whenOpen(socket, 30_000);
        return socket;
      }),
    );
    for (const r of results) {
      if (r.status === 'fulfilled') sockets.push(r.value);
      else {
        failed++;
        lastError = (r.reason as Error).message;
      }
    }
  }
  send({ type: 'opened', open: openCount(), failed, ms: performance.now() - started, lastError });
}

/** Round trips of `samples` WebSocket pings, one at a time, spread over the open sessions. */
async function ping(samples: number): Promise<void> {
  const live = sockets.filter((s) => s.readyState === wsOpen);
  const rtts: number[] = [];
  const step = Math.max(1, Math.floor(live.length / samples));
  for (let i = 0; i < samples && live.length > 0; i++) {
    const socket = live[(i * step) % live.length];
    rtts.push(
      await new Promise<number>((resolve) => {
        const started = performance.now();
        const timer = setTimeout(() => resolve(Number.NaN), 5_000);
        socket.once('pong', () => {
          clearTimeout(timer);
          resolve(performance.now() - started);
        });
        socket.ping();
      }),
    );
  }
  send({ type: 'pinged', rtts, open: openCount() });
}

function openCount(): number {
  return sockets.filter((s) => s.readyState === wsOpen).length;
}

function send(message: Record<string, unknown>): void {
  process.send?.(message);
}

process.on('message', (command: Command) => {
  switch (command.type) {
    case 'open':
      void open(command.url, command.total);
      break;
    case 'ping':
      void ping(command.samples);
      break;
    case 'close':
      for (const s of sockets) s.terminate();
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 100);
      break;
  }
});
process.on('disconnect', () => process.exit(0));

import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** Connection bounds of the HTTP server (config `server`). */
export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly headersTimeoutMs: number;
}

/**
 * Bounds open TCP connections in all (`server.maxConnections`: Node refuses more at accept) and per
 * client address (more are closed at once, before a byte is read), and how long a client may take
 * to send its request headers (a slowloris holds no socket for long).
 */
export function registerConnectionLimits(app: FastifyInstance, limits: ConnectionLimits): void {
  const server = app.server;
  server.maxConnections = limits.maxConnections;
  server.headersTimeout = limits.headersTimeoutMs;
  const perIp = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    const open = (perIp.get(ip) ?? 0) + 1;
    if (open > limits.maxConnectionsPerIp) {
      socket.destroy();
      return;
    }
    perIp.set(ip, open);
    socket.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left > 0) perIp.set(ip, left);
      else perIp.delete(ip);
    });
  });
}

/**
 * CORS is off unless `server.corsOrigins` lists an origin: then that origin gets the
 * `Access-Control-Allow-*` headers and its preflights are answered. Other origins get none, so a
 * browser page elsewhere cannot read responses.
 */
export function registerCors(app: FastifyInstance, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !allowed.has(origin)) return;
    void reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
    if (request.method === 'OPTIONS') {
      await reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS')
        .header('access-control-allow-headers', 'authorization, content-type, api-key, openai-beta, x-request-id')
        .header('access-control-max-age', '600')
        .send();
    }
  });
}

import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { FlintError } from '../errors/FlintError.js';

const openRoutes = new Set(['/health', '/v1/health', '/ready']);

/**
 * When keys are configured, every API route (and the WebSocket handshake, which is a GET)
 * needs `Authorization: Bearer <key>` or `api-key: <key>`. Liveness and readiness stay open.
 */
export function registerAuth(app: FastifyInstance, apiKeys: readonly string[], options: { hasMetricsToken: boolean }): void {
  if (apiKeys.length === 0) return;
  const keys = apiKeys.map((k) => Buffer.from(k));
  app.addHook('onRequest', async (request) => {
    const route = request.url.split('?')[0];
    if (openRoutes.has(route) || (options.hasMetricsToken && route === '/metrics')) return;
    const header = request.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice(7).trim() : firstHeader(request.headers['api-key']);
    if (!presented || !isKnownKey(keys, Buffer.from(presented))) throw new FlintError('FLINT_ERR_UNAUTHORIZED');
  });
}

function isKnownKey(keys: readonly Buffer[], presented: Buffer): boolean {
  let found = false;
  for (const key of keys) if (key.length === presented.length && timingSafeEqual(key, presented)) found = true;
  return found;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

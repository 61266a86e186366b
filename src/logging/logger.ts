import type { FastifyServerOptions } from 'fastify';

/** Header and field paths never written to logs. */
export const redactPaths = ['req.headers.authorization', 'req.headers["api-key"]', 'req.headers.cookie', 'headers.authorization', '*.apiKeys'];

/** pino options for the gateway: JSON lines, the level from config, secrets redacted. */
export function createLoggerOptions(level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    serializers: {
      req: (req: { method: string; url: string; id: string }) => ({ method: req.method, url: req.url, reqId: req.id }),
    },
  };
}

import type { FastifyServerOptions } from 'fastify';
import pinoPretty from 'pino-pretty';
import { formatLogLine } from './formatLogLine.js';

/** Header and field paths never written to logs. */
export const redactPaths = ['req.headers.authorization', 'req.headers["api-key"]', 'req.headers.cookie', 'headers.authorization', '*.apiKeys', '*.hfToken'];

/** pino's number for `info`, and the start of the line Fastify logs once it listens. */
const infoLevel = 30;
const fastifyListeningText = 'Server listening at ';

/** How log lines look: JSON objects, or short human lines rendered by pino-pretty. */
export type LogFormat = 'json' | 'pretty';

/**
 * pino options for the gateway: the level from config, secrets redacted, and either JSON lines
 * or pino-pretty writing human lines to stdout (synchronously, so nothing is lost at exit).
 */
export function createLoggerOptions(level: string, format: LogFormat = 'json', options: { colorize?: boolean } = {}): NonNullable<FastifyServerOptions['logger']> {
  const base = {
    level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    serializers: {
      req: (req: { method: string; url: string; id: string }) => ({ method: req.method, url: req.url, reqId: req.id }),
    },
  };
  if (format === 'json') return base;
  const stream = pinoPretty({
    destination: 1,
    sync: true,
    colorize: options.colorize,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname',
    hideObject: true,
    messageFormat: (log) => formatLogLine(log),
  });
  return {
    ...base,
    stream,
    hooks: {
      // Fastify's own "Server listening at" line: the start-up summary already says where, in full.
      logMethod(this: unknown, args: unknown[], method: (...a: unknown[]) => void, level: number) {
        if (level === infoLevel && typeof args[0] === 'string' && args[0].startsWith(fastifyListeningText)) return;
        method.apply(this, args);
      },
    },
  } as NonNullable<FastifyServerOptions['logger']>;
}

/** `auto` → pretty on a terminal, JSON otherwise. */
export function resolveLogFormat(format: 'auto' | LogFormat, isTty: boolean): LogFormat {
  return format === 'auto' ? (isTty ? 'pretty' : 'json') : format;
}

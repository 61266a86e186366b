import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { FlintError } from '../../errors/FlintError.js';

/** What `/metrics` serves: the registry's text and its content type. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** `GET /metrics` in Prometheus text format; with a token, only for `Authorization: Bearer <token>`. */
export async function metricsRoutes(app: FastifyInstance, options: { source: MetricsSource; token: string }): Promise<void> {
  const expected = Buffer.from(`Bearer ${options.token}`);
  app.get('/metrics', async (request, reply) => {
    if (options.token) {
      const presented = Buffer.from(request.headers.authorization ?? '');
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) throw new FlintError('FLINT_ERR_UNAUTHORIZED');
    }
    reply.header('content-type', options.source.contentType);
    return options.source.metrics();
  });
}

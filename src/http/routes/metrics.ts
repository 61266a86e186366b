import type { FastifyInstance } from 'fastify';

/** What `/metrics` serves: the registry's text and its content type. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** `GET /metrics` in Prometheus text format. */
export async function metricsRoutes(app: FastifyInstance, options: { source: MetricsSource }): Promise<void> {
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', options.source.contentType);
    return options.source.metrics();
  });
}

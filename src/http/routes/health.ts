import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../core/Gateway.js';

/** `/health` (liveness) and `/ready` (model loaded and every worker up). */
export async function healthRoutes(app: FastifyInstance, options: { gateway: Gateway }): Promise<void> {
  const live = async () => ({ status: 'ok' });
  app.get('/health', live);
  app.get('/v1/health', live);
  app.get('/ready', async (_request, reply) => {
    const readiness = options.gateway.readiness();
    if (readiness.isReady) return { status: 'ready', model: options.gateway.model?.id };
    return reply.code(503).header('retry-after', '2').send({ status: 'not_ready', reason: readiness.reason });
  });
}

import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../core/Gateway.js';

/** `/health` (liveness) and `/ready` (the model is loaded and some slot can serve; 503 while none can or during shutdown). */
export async function healthRoutes(app: FastifyInstance, options: { gateway: Gateway }): Promise<void> {
  const live = async () => ({ status: 'ok' });
  app.get('/health', live);
  app.get('/v1/health', live);
  app.get('/ready', async (_request, reply) => {
    const readiness = options.gateway.readiness();
    if (readiness.isReady) return { status: 'ready', model: options.gateway.model?.id, ...(readiness.reason ? { degraded: readiness.reason } : {}) };
    return reply.code(503).header('retry-after', '2').send({ status: 'not_ready', reason: readiness.reason });
  });
}

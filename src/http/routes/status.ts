import type { FastifyInstance } from 'fastify';
import type { StatusSource } from '../../core/status.js';

/** `GET /v1/flint/status` (same auth as the API): the console's live view, for the caller's key. */
export async function statusRoutes(app: FastifyInstance, options: { source: StatusSource }): Promise<void> {
  app.get('/v1/flint/status', async (request) => options.source.status(request.tenant));
}

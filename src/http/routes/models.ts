import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../core/Gateway.js';
import { resolveModelName, toModelList, toModelObject } from '../../protocol/models.js';
import { servedModel } from '../runGeneration.js';

/** `GET /v1/models` and `GET /v1/models/{id}`. */
export async function modelRoutes(app: FastifyInstance, options: { gateway: Gateway }): Promise<void> {
  app.get('/v1/models', async () => toModelList(servedModel(options.gateway)));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    const model = servedModel(options.gateway);
    return toModelObject(model, resolveModelName(request.params.id, model, false));
  });
}

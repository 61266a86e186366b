import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../core/Gateway.js';
import { FlintError } from '../../errors/FlintError.js';
import { resolveModelName, toModelList, toModelObject } from '../../protocol/models.js';

/** `GET /v1/models` and `GET /v1/models/{id}`. */
export async function modelRoutes(app: FastifyInstance, options: { gateway: Gateway; acceptAnyModelName: boolean }): Promise<void> {
  const served = () => {
    const model = options.gateway.model;
    if (!model) throw new FlintError('FLINT_ERR_NOT_READY', { details: { reason: 'model loading', retryAfterS: 2 } });
    return model;
  };
  app.get('/v1/models', async () => toModelList(served()));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    const model = served();
    return toModelObject(model, resolveModelName(request.params.id, model, false));
  });
}

import type { FastifyError, FastifyInstance } from 'fastify';
import { FlintError } from '../errors/FlintError.js';
import { toWireError } from '../errors/toWireError.js';

/** Routes every error and unknown route through toWireError, the one mapping to the OpenAI shape. */
export function registerErrorHandlers(app: FastifyInstance, bodyLimitBytes: number): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const mapped = toWireError(err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? new FlintError('FLINT_ERR_BODY_TOO_LARGE', { details: { limitBytes: bodyLimitBytes }, cause: err }) : err);
    if (!mapped.isExpected) request.log.error({ err }, 'unexpected error');
    else request.log.debug({ code: mapped.body.error.code, status: mapped.status }, 'request refused');
    return reply.code(mapped.status).headers(mapped.headers).send(mapped.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const mapped = toWireError(new FlintError('FLINT_ERR_ROUTE_NOT_FOUND', { details: { method: request.method, url: request.url.split('?')[0] } }));
    return reply.code(mapped.status).send(mapped.body);
  });
}

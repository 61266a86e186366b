import type { FastifyInstance } from 'fastify';
import { FlintError } from '../errors/FlintError.js';
import { checkJsonShape, type JsonShapeLimits } from '../utils/checkJsonShape.js';

/**
 * `application/json` bodies: the shape is checked (nesting depth, array lengths) before
 * `JSON.parse`, so a hostile body is a 400 naming the param instead of a stack overflow somewhere
 * downstream. Size is bounded by Fastify's `bodyLimit` before this runs.
 */
export function registerJsonBodyParser(app: FastifyInstance, limits: JsonShapeLimits): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonParser(limits));
}

/**
 * Every body read as JSON whatever its content type, for routes whose clients do not set one
 * (Ollama's API: `curl -d` sends form encoding, and Ollama itself parses JSON regardless).
 * Registered inside a route plugin, it applies to that plugin's routes only.
 */
export function registerAnyBodyAsJson(app: FastifyInstance, limits: JsonShapeLimits): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, jsonParser(limits));
  // Fastify answers a malformed Content-Type (`json`, `application/json, text/plain`) with 415
  // before any parser runs, the catch-all included: these routes never read the header, so it goes.
  app.addHook('onRequest', async (request) => {
    delete request.headers['content-type'];
  });
}

function jsonParser(limits: JsonShapeLimits) {
  return (_request: unknown, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    const text = body as string;
    if (text.length === 0) return done(new FlintError('FLINT_ERR_BAD_JSON', { details: { detail: 'The body is empty.' } }), undefined);
    const violation = checkJsonShape(text, limits);
    if (violation) return done(new FlintError('FLINT_ERR_JSON_TOO_COMPLEX', { param: violation.param, details: { detail: violation.detail } }), undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (err) {
      done(new FlintError('FLINT_ERR_BAD_JSON', { details: { detail: (err as Error).message }, cause: err }), undefined);
    }
  };
}

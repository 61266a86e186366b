import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance } from 'fastify';
import { FlintError } from '../errors/FlintError.js';
import { toWireError } from '../errors/toWireError.js';
import { toAnthropicError } from '../protocol/anthropic/MessagesEncoder.js';

/** Routes every error and unknown route through toWireError, the one mapping to the OpenAI shape. */
export function registerErrorHandlers(app: FastifyInstance, bodyLimitBytes: number): void {
  // Which methods each route pattern has, so a known path with the wrong method is a 405, not a 404.
  const routes: Array<{ pattern: RegExp; method: string }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+')}/?$`);
    for (const method of [route.method].flat()) routes.push({ pattern, method });
  });
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const mapped = toWireError(err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? new FlintError('FLINT_ERR_BODY_TOO_LARGE', { details: { limitBytes: bodyLimitBytes }, cause: err }) : err);
    if (!mapped.isExpected) request.log.error({ err }, 'unexpected error');
    else request.log.debug({ code: mapped.body.error.code, status: mapped.status }, 'request refused');
    const anthropic = isAnthropicRoute(request.url) ? toAnthropicError(mapped.status, mapped.body.error.message, mapped.body.error.code === 'server_overloaded') : undefined;
    if (anthropic) return reply.code(anthropic.status).headers(mapped.headers).send(anthropic.body);
    return reply.code(mapped.status).headers(mapped.headers).send(inEnvelopeOf(request.url, mapped.body));
  });
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0];
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(url)).map((r) => r.method))].filter((m) => m !== 'HEAD');
    const mapped = toWireError(
      allowed.length > 0
        ? new FlintError('FLINT_ERR_METHOD_NOT_ALLOWED', { details: { method: request.method, url } })
        : new FlintError('FLINT_ERR_ROUTE_NOT_FOUND', { details: { method: request.method, url } }),
    );
    if (allowed.length > 0) void reply.header('allow', allowed.join(', '));
    if (isAnthropicRoute(url)) {
      const anthropic = toAnthropicError(mapped.status, mapped.body.error.message, false);
      return reply.code(anthropic.status).send(anthropic.body);
    }
    return reply.code(mapped.status).send(inEnvelopeOf(request.url, mapped.body));
  });
}

/** Anthropic's Messages routes answer errors in its envelope, `{"type":"error","error":{"type","message"}}`. */
function isAnthropicRoute(url: string): boolean {
  return url === '/v1/messages' || url.startsWith('/v1/messages/') || url.startsWith('/v1/messages?');
}

/** Ollama's routes (`/api/...`) answer errors in its envelope, `{"error": "<message>"}`; every other route in OpenAI's. */
function inEnvelopeOf(url: string, body: ReturnType<typeof toWireError>['body']): unknown {
  return url.startsWith('/api/') ? { error: body.error.message } : body;
}

/**
 * Errors Node's HTTP parser raises before any route runs (URI or headers too long, malformed
 * requests) get the OpenAI envelope too, then the connection closes.
 */
export function handleClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'HPE_URI_TOO_LONG' || err.code === 'ERR_HTTP_REQUEST_URI_TOO_LONG' ? 414 : 400;
  const message = status === 431 ? 'The request headers are too large.' : status === 414 ? 'The request URI is too long.' : 'The request could not be parsed.';
  const body = JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code: status === 400 ? 'bad_request' : 'request_too_large' } });
  socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 414 ? 'URI Too Long' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

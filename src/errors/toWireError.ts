import { errorCodes } from './codes.js';
import { FlintError } from './FlintError.js';

/** The OpenAI error envelope. */
export interface WireErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A mapped error: the HTTP status, the envelope, and headers such as `Retry-After`. */
export interface WireError {
  status: number;
  body: WireErrorBody;
  headers: Record<string, string>;
  /** False for errors we did not anticipate: those are logged as bugs. */
  isExpected: boolean;
}

/**
 * The one mapping from anything thrown to the OpenAI error shape. Unknown errors become a
 * generic 500 whose details go only to the log, never to the client.
 */
export function toWireError(err: unknown): WireError {
  const flint = err instanceof FlintError ? err : fromForeign(err);
  if (!flint) {
    const row = errorCodes.FLINT_ERR_INTERNAL;
    return {
      status: row.status,
      body: { error: { message: row.message, type: row.type, param: null, code: row.code } },
      headers: {},
      isExpected: false,
    };
  }
  const row = errorCodes[flint.code];
  const headers: Record<string, string> = {};
  const retryAfter = flint.details.retryAfterS;
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  return {
    status: row.status,
    body: { error: { message: flint.message, type: row.type, param: flint.param, code: row.code } },
    headers,
    isExpected: flint.code !== 'FLINT_ERR_INTERNAL',
  };
}

/** Fastify and Node raise a few errors of their own before our handlers run; map them by code. */
function fromForeign(err: unknown): FlintError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; message?: unknown; statusCode?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FlintError('FLINT_ERR_BAD_JSON', { details: { detail: message }, cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FlintError('FLINT_ERR_BODY_TOO_LARGE', { details: { limitBytes: extractLimit(message) }, cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FlintError('FLINT_ERR_UNSUPPORTED_MEDIA_TYPE', { details: { contentType: 'unknown' }, cause: err });
    default:
      if (e instanceof Error && e.name === 'TimeoutError') return new FlintError('FLINT_ERR_DEADLINE', { details: { detail: 'server.requestTimeoutMs' }, cause: err });
      if (e instanceof Error && e.name === 'AbortError') return new FlintError('FLINT_ERR_CLIENT_CLOSED', { cause: err });
      if (err instanceof SyntaxError && (err as { statusCode?: unknown }).statusCode === 400) {
        return new FlintError('FLINT_ERR_BAD_JSON', { details: { detail: message }, cause: err });
      }
      return undefined;
  }
}

function extractLimit(message: string): string {
  return /(\d+)/.exec(message)?.[1] ?? 'configured';
}

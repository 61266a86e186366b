import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestObserver } from '../core/RequestObserver.js';
import type { RunRegistry } from '../core/RunRegistry.js';
import type { TenantLimits } from '../core/TenantLimits.js';
import { FlintError } from '../errors/FlintError.js';
import { anonymousTenant } from '../core/types.js';
import { toCacheScope } from '../core/GenerationRun.js';
import type { ResponseService } from '../responses/ResponseService.js';
import { createId } from '../utils/ids.js';
import { LruMap } from '../utils/LruMap.js';
import { ResponsesConnection, type ConnectionLimits, type SessionObserver } from './ResponsesConnection.js';
import { ResumableSessions, type ResumableLimits, type ResumableObserver, type SessionState } from './ResumableSessions.js';

/** Options of the WebSocket mode (config `websocket` plus dependencies). */
export interface ResponsesSocketOptions {
  readonly service: ResponseService;
  readonly requests: RequestObserver;
  readonly sessions: SessionObserver;
  readonly limits: ConnectionLimits & ResumableLimits & { readonly maxFrameBytes: number; readonly maxSockets: number; readonly maxSocketsPerKey: number; readonly sessionHeaders: readonly string[] };
  /** Metrics of resumable sessions. */
  readonly resumable?: ResumableObserver;
  /** This node's name, sent as `x-flint-replica` on the 101 answer too. */
  readonly replicaId?: string;
  /** Runs in flight, for graceful shutdown. */
  readonly runs: RunRegistry;
  /** Browser origins allowed to open a socket (config `server.corsOrigins`); clients that send no Origin are not browsers. */
  readonly allowedOrigins: readonly string[];
  /** Per-tenant limits (concurrent generations). */
  readonly tenantLimits: TenantLimits;
  /** Called when a session ends (its socket closed, or its resume grace period ended), to drop its slot affinity. */
  readonly onSessionEnd?: (sessionKey: string) => void;
}

/**
 * `GET /v1/responses` with an Upgrade: the Responses WebSocket mode. Authentication (the
 * global onRequest hook) and the socket limits are checked on the handshake, so a refusal is
 * a plain HTTP error and never an open socket. A GET without an upgrade answers 426.
 */
export async function responsesSocketRoutes(app: FastifyInstance, options: ResponsesSocketOptions): Promise<void> {
  const { limits } = options;
  const connections = new Set<ResponsesConnection>();
  const perKey = new Map<string, number>();
  const sessions = new ResumableSessions(limits, (state) => options.onSessionEnd?.(state.affinityKey), options.resumable);
  let isDraining = false;
  await app.register(websocket, {
    options: { maxPayload: limits.maxFrameBytes, handleProtocols: chooseProtocol },
    preClose: async () => {
      isDraining = true;
      await Promise.all([...connections].map((connection) => connection.drain()));
      await new Promise<void>((resolve) => app.websocketServer.close(() => resolve()));
      sessions.dispose();
    },
  });

  if (options.replicaId) {
    const header = `x-flint-replica: ${options.replicaId}`;
    app.websocketServer.on('headers', (headers: string[]) => headers.push(header));
  }

  app.route({
    method: 'GET',
    url: '/v1/responses',
    preValidation: async (request) => {
      if (request.headers.upgrade?.toLowerCase() !== 'websocket') return;
      // A browser always sends Origin: only this server's own pages (the console) and listed origins may open a socket (no cross-site WebSocket hijacking).
      const origin = request.headers.origin;
      if (typeof origin === 'string' && !options.allowedOrigins.includes(origin) && !isSameOrigin(origin, request)) throw new FlintError('FLINT_ERR_ORIGIN_FORBIDDEN', { details: { origin: origin.slice(0, 200) } });
      // A server that is shutting down opens no new socket: 503 with Retry-After, so the client goes elsewhere.
      if (isDraining) throw new FlintError('FLINT_ERR_SHUTTING_DOWN', { details: { retryAfterS: 5 } });
      sessionName(request, limits.sessionHeaders); // a malformed name is refused here, with 400
      const key = clientKey(request);
      if (connections.size >= limits.maxSockets || (perKey.get(key) ?? 0) >= limits.maxSocketsPerKey) {
        throw new FlintError('FLINT_ERR_WS_TOO_MANY_SOCKETS', { details: { open: connections.size, retryAfterS: 5 } });
      }
    },
    handler: async () => {
      throw new FlintError('FLINT_ERR_WS_REQUIRED');
    },
    wsHandler: (socket, request) => {
      const key = clientKey(request);
      const name = sessionName(request, limits.sessionHeaders);
      // Affinity keys are scoped like the cache (GenerationRun).
      const fresh = (): SessionState => {
        const id = createId('wss_');
        return { cache: new LruMap(limits.connectionCacheSize), sessionKey: id, affinityKey: `${toCacheScope(limits.cacheScope, request.tenant)}:${id}` };
      };
      const state = name === undefined ? fresh() : sessions.open(request.tenant, name, fresh);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      const connection = new ResponsesConnection(socket, {
        service: options.service,
        limits,
        log: request.log.child({ sessionId: state.sessionKey }),
        requests: options.requests,
        sessions: options.sessions,
        sessionKey: state.sessionKey,
        cache: state.cache,
        tenant: request.tenant,
        runs: options.runs,
        tenantLimits: options.tenantLimits,
        limitKey: key,
      });
      connections.add(connection);
      // Upgraded in the moment the drain began: it ends like the others.
      if (isDraining) void connection.drain();
      socket.once('close', () => {
        connections.delete(connection);
        const left = (perKey.get(key) ?? 1) - 1;
        if (left > 0) perKey.set(key, left);
        else perKey.delete(key);
        if (name === undefined) options.onSessionEnd?.(state.affinityKey);
        else sessions.close(request.tenant, name);
      });
    },
  });
}

/** Whether `origin` is this server itself, as the request addressed it (its Host header). */
function isSameOrigin(origin: string, request: FastifyRequest): boolean {
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/**
 * The subprotocol the server answers with when a client offers some (a browser fails the
 * handshake otherwise): `flint`, else the first one that is not a key (keys are never echoed).
 */
function chooseProtocol(protocols: Set<string>): string | false {
  if (protocols.has('flint')) return 'flint';
  for (const protocol of protocols) if (!protocol.includes('insecure-api-key.')) return protocol;
  return false;
}

/** Characters of a session name: what UUIDs, ULIDs and most ids use. */
const sessionNamePattern = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The session a socket joins: the first of `headers` the handshake carries, else `?session=`.
 * Undefined when it names none; a malformed name is a 400.
 */
function sessionName(request: FastifyRequest, headers: readonly string[]): string | undefined {
  let value: unknown;
  for (const header of headers) {
    value = request.headers[header.toLowerCase()];
    if (value !== undefined) break;
  }
  value ??= (request.query as Record<string, unknown> | undefined)?.session;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !sessionNamePattern.test(value)) {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'session', details: { detail: 'Invalid session name: use 1 to 128 letters, digits or . _ : - characters.' } });
  }
  return value;
}

/** Sockets are counted per resolved API key (its tenant), or per client address when the server has no keys. */
function clientKey(request: FastifyRequest): string {
  return request.tenant !== anonymousTenant ? `key:${request.tenant}` : `ip:${request.ip}`;
}

/**
 * A refused WebSocket handshake (401, 426, 429, ...) is answered over the raw upgrade socket,
 * which the HTTP server no longer manages: close it once the answer is sent, or it lingers
 * half-open and holds up server shutdown. Register on the root instance.
 */
export function registerUpgradeCleanup(app: FastifyInstance): void {
  // Say so in the reply: a client must not reuse a connection that is about to be closed.
  app.addHook('onSend', async (request, reply) => {
    if (request.headers.upgrade !== undefined && reply.statusCode !== 101) void reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    if (request.headers.upgrade !== undefined && reply.statusCode !== 101) request.raw.socket?.destroySoon();
  });
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { anonymousTenant, frontTenantHeader } from '../core/types.js';
import { FlintError } from '../errors/FlintError.js';
import type { TenantLimits } from '../core/TenantLimits.js';

const openRoutes = new Set(['/health', '/v1/health', '/ready']);


declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who sent the request: a hash of its API key (never the key), or `anonymous` when the
     * server has no keys. Stored responses and the prompt cache are scoped by it.
     */
    tenant: string;
  }
}

/** The tenant id of a key: a prefix of its SHA-256, so logs and the store never hold a key. */
export function toTenant(keyDigest: Buffer): string {
  return `k_${keyDigest.subarray(0, 12).toString('hex')}`;
}

/**
 * When keys are configured, every API route (and the WebSocket handshake, which is a GET)
 * needs `Authorization: Bearer <key>` (scheme in any case), `x-api-key: <key>` or `api-key: <key>`. Liveness and
 * readiness stay open. Keys may be configured as `sha256:<hex>`; every comparison is between
 * SHA-256 digests, in constant time. Each request gets its `tenant`. A request with one of
 * `frontKeys` (a Flint front's) may name its tenant in `x-flint-tenant`: it becomes a tenant of
 * that front's own (`<front's tenant>/<name>`), so prompt caches, stored responses and limits stay
 * per client behind the front, and no other key can pose as one of its tenants.
 */
export function registerAuth(app: FastifyInstance, apiKeys: readonly string[], options: { hasMetricsToken: boolean; openPaths?: readonly string[]; frontKeys?: readonly string[] }): void {
  app.decorateRequest('tenant', anonymousTenant);
  const frontDigests = (options.frontKeys ?? []).map(toDigest);
  if (apiKeys.length === 0 && frontDigests.length === 0) return;
  const digests = [...apiKeys.map(toDigest), ...frontDigests];
  const open = new Set([...openRoutes, ...(options.openPaths ?? [])]);
  app.addHook('onRequest', async (request) => {
    const route = request.url.split('?')[0];
    if (open.has(route) || (options.hasMetricsToken && route === '/metrics')) return;
    const presented = presentedKey(request);
    const digest = presented === undefined ? undefined : sha256(presented);
    if (!digest || !isKnown(digests, digest)) throw new FlintError('FLINT_ERR_UNAUTHORIZED');
    request.tenant = toTenant(digest);
    // A Flint front serves many tenants with one key: it names the tenant, within its own namespace.
    if (frontDigests.length > 0 && isKnown(frontDigests, digest)) {
      const named = request.headers[frontTenantHeader];
      if (typeof named === 'string' && frontTenantPattern.test(named)) request.tenant = `${request.tenant}/${named}`;
    }
  });
}

/** What a front's tenant name may hold (its cache scope: `t:k_<hex>` or `shared`). */
const frontTenantPattern = /^[A-Za-z0-9_:./-]{1,128}$/;

/**
 * The key a request presents, from `Authorization: Bearer` (any case, any spacing), `x-api-key`
 * (Anthropic's clients) or `api-key`; on a WebSocket handshake also from a subprotocol
 * `flint-insecure-api-key.<key>` (or OpenAI's `openai-insecure-api-key.<key>`), the only header
 * a browser's WebSocket can set.
 */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1];
  }
  const apiKey = request.headers['x-api-key'] ?? request.headers['api-key'];
  const value = (Array.isArray(apiKey) ? apiKey[0] : apiKey)?.trim();
  if (value) return value;
  const protocols = request.headers['sec-websocket-protocol'];
  if (typeof protocols === 'string' && request.headers.upgrade !== undefined) {
    for (const protocol of protocols.split(',')) {
      const match = /^(?:flint|openai)-insecure-api-key\.(\S+)$/.exec(protocol.trim());
      if (match) return match[1];
    }
  }
  return undefined;
}

function toDigest(configured: string): Buffer {
  const hashed = /^sha256:([0-9a-f]{64})$/i.exec(configured);
  return hashed ? Buffer.from(hashed[1], 'hex') : sha256(configured);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function isKnown(digests: readonly Buffer[], digest: Buffer): boolean {
  let found = false;
  for (const known of digests) if (timingSafeEqual(known, digest)) found = true;
  return found;
}

/** Who per-tenant limits count: the key's tenant, or the client address when the server has no keys. */
export function limitKey(request: FastifyRequest): string {
  return request.tenant !== anonymousTenant ? request.tenant : `ip:${request.ip}`;
}

/** Counts every API request (not liveness, readiness or metrics) against its tenant's rate. */
export function registerRateLimit(app: FastifyInstance, limits: TenantLimits): void {
  app.addHook('onRequest', async (request) => {
    const route = request.url.split('?')[0];
    if (openRoutes.has(route) || route === '/metrics') return;
    limits.admitRequest(limitKey(request));
  });
}

import { FlintError } from '../errors/FlintError.js';

/** Per-tenant limits (config `limits`); 0 turns a limit off. */
export interface TenantLimitSettings {
  /** Sustained requests per second per tenant (token bucket). */
  readonly requestsPerSecond: number;
  /** Requests a tenant may send at once above the sustained rate. */
  readonly burst: number;
  /** Generations one tenant may have admitted (queued or running) at once. */
  readonly concurrentGenerations: number;
}

interface Bucket {
  tokens: number;
  refilledAt: number;
  running: number;
}

/** Tenants tracked at most; the least recently seen are forgotten (their buckets are full again). */
const maxTenants = 10_000;

/**
 * Request-rate and concurrency limits per tenant (a key's hash, or a client address without
 * keys), so one tenant cannot fill the queue for everybody. Over a limit: 429
 * `rate_limit_exceeded` with `Retry-After`.
 */
export class TenantLimits {
  readonly #settings: TenantLimitSettings;
  readonly #buckets = new Map<string, Bucket>();

  constructor(settings: TenantLimitSettings) {
    this.#settings = settings;
  }

  /** Counts one request against `tenant`'s rate; throws 429 when it has none left. */
  admitRequest(tenant: string): void {
    const { requestsPerSecond, burst } = this.#settings;
    if (requestsPerSecond <= 0) return;
    const bucket = this.#bucket(tenant);
    const now = performance.now();
    bucket.tokens = Math.min(Math.max(burst, 1), bucket.tokens + ((now - bucket.refilledAt) / 1000) * requestsPerSecond);
    bucket.refilledAt = now;
    if (bucket.tokens < 1) {
      throw new FlintError('FLINT_ERR_RATE_LIMITED', { details: { limit: `${requestsPerSecond} requests per second`, retryAfterS: Math.max(1, Math.ceil((1 - bucket.tokens) / requestsPerSecond)) } });
    }
    bucket.tokens -= 1;
  }

  /** Takes one of `tenant`'s concurrent generations; the returned function gives it back (once). */
  acquireGeneration(tenant: string): () => void {
    const limit = this.#settings.concurrentGenerations;
    if (limit <= 0) return () => undefined;
    const bucket = this.#bucket(tenant);
    if (bucket.running >= limit) {
      throw new FlintError('FLINT_ERR_RATE_LIMITED', { details: { limit: `${limit} concurrent generations`, retryAfterS: 1 } });
    }
    bucket.running++;
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      bucket.running--;
    };
  }

  #bucket(tenant: string): Bucket {
    let bucket = this.#buckets.get(tenant);
    if (bucket) {
      // Most recently seen last, so the oldest is first to forget.
      this.#buckets.delete(tenant);
    } else {
      bucket = { tokens: Math.max(this.#settings.burst, 1), refilledAt: performance.now(), running: 0 };
      if (this.#buckets.size >= maxTenants) {
        for (const [key, old] of this.#buckets) {
          if (old.running === 0) {
            this.#buckets.delete(key);
            break;
          }
        }
      }
    }
    this.#buckets.set(tenant, bucket);
    return bucket;
  }
}

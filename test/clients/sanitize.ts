import type { RecordedExchange } from './loggingProxy.js';

/** What a fixture keeps of one recorded request. */
export interface RequestFixture {
  readonly description: string;
  readonly client: string;
  readonly transport: 'http' | 'websocket';
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  /** HTTP: the request body. WebSocket: absent (see `messages`). */
  readonly body?: unknown;
  /** WebSocket: the client frames of the first turn, in order. */
  readonly messages?: unknown[];
}

/**
 * Replaces what differs from run to run or machine to machine: UUIDs (numbered in order of
 * appearance), the temporary directories, ports, dates and millisecond timestamps. Headers
 * that only describe the transport (host, content-length, the WebSocket key) are dropped.
 */
export function sanitizeExchange(exchange: RecordedExchange, meta: { description: string; client: string; messages?: unknown[]; replacePaths: Record<string, string> }): RequestFixture {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(exchange.headers)) {
    if (['host', 'content-length', 'sec-websocket-key', 'connection'].includes(k) || v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  const raw: RequestFixture = {
    description: meta.description,
    client: meta.client,
    transport: exchange.kind,
    method: exchange.method,
    path: exchange.path,
    headers,
    ...(exchange.kind === 'http' ? { body: exchange.body } : { messages: meta.messages ?? exchange.clientMessages }),
  };
  let text = JSON.stringify(raw);
  for (const [from, to] of Object.entries(meta.replacePaths)) text = text.split(from).join(to);
  const ids = new Map<string, string>();
  text = text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, (uuid) => {
    const lower = uuid.toLowerCase();
    if (!ids.has(lower)) ids.set(lower, `00000000-0000-0000-0000-${String(ids.size + 1).padStart(12, '0')}`);
    return ids.get(lower)!;
  });
  text = text
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    .replace(/\d{4}-\d{2}-\d{2}(?=<\/current_date>)/g, '2026-01-01')
    .replace(/(\\?"turn_started_at_unix_ms\\?":)\d+/g, '$10')
    .replace(/(resp|msg|fc|rs|call)_[A-Za-z0-9]{16,}/g, '$1_SANITIZED');
  return JSON.parse(text) as RequestFixture;
}

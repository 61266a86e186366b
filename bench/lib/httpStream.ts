/**
 * A minimal streaming HTTP client on node:http with a keep-alive agent. Chunks are only
 * timestamped while the response streams and parsed afterwards, because the client shares its
 * event loop with the in-process gateway and must not slow it down.
 */
import http from 'node:http';
import { now } from './clock.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface TimedChunk {
  readonly t: number;
  readonly text: string;
}

export interface StreamedResponse {
  readonly status: number;
  /** Just before the request body was handed to the socket. */
  readonly startedAt: number;
  readonly chunks: TimedChunk[];
  readonly endedAt: number;
}

/** POSTs `body` (already serialized) and collects the response body as timed chunks. */
export function postStream(url: string, body: string, timeoutMs: number): Promise<StreamedResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: TimedChunk[] = [];
    const req = http.request({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'text/event-stream' },
    });
    const timer = setTimeout(() => req.destroy(new Error(`no complete response within ${timeoutMs} ms`)), timeoutMs);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (text: string) => chunks.push({ t: now(), text }));
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, startedAt, chunks, endedAt: now() });
      });
      res.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const startedAt = now();
    req.end(body);
  });
}

/** One server-sent event, stamped with the arrival time of the chunk that completed it. */
export interface SseFrame {
  readonly t: number;
  readonly event: string | undefined;
  readonly data: string;
}

/** Splits timed chunks into SSE frames (`event:` and `data:` lines, blank-line separated). */
export function parseSse(chunks: readonly TimedChunk[]): SseFrame[] {
  const frames: SseFrame[] = [];
  let buffer = '';
  for (const chunk of chunks) {
    buffer += chunk.text;
    let at: number;
    while ((at = buffer.indexOf('\n\n')) !== -1) {
      const raw = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let event: string | undefined;
      const data: string[] = [];
      for (const line of raw.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) frames.push({ t: chunk.t, event, data: data.join('\n') });
    }
  }
  return frames;
}

/** Body of a non-2xx response, for error messages. */
export function bodyText(response: StreamedResponse): string {
  return response.chunks.map((c) => c.text).join('').slice(0, 500);
}

/** GET or POST without streaming; resolves with status and text (for probes). */
export function request(url: string, method: 'GET' | 'POST', body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method,
      agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (text += s));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.once('error', reject);
    });
    req.end(body);
  });
}

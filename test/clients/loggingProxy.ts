import http, { type IncomingHttpHeaders } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

/** One HTTP exchange seen by the proxy (a WebSocket handshake included). */
export interface RecordedExchange {
  readonly kind: 'http' | 'websocket';
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON when the body is JSON, else the text (undefined when empty). */
  readonly body: unknown;
  status?: number;
  responseHeaders?: IncomingHttpHeaders;
  /** Response text (SSE included), truncated to `maxResponseChars`. */
  responseText?: string;
  /** WebSocket mode: every client frame (parsed JSON), in order. */
  readonly clientMessages: unknown[];
  /** WebSocket mode: the `type` of every server frame, in order. */
  readonly serverEventTypes: string[];
  /** WebSocket close code and reason as seen from either side. */
  closed?: { by: 'client' | 'server'; code: number; reason: string };
  /** Terminal responses seen in this exchange (SSE, JSON body or WebSocket frames), in order. */
  readonly responses: TerminalResponse[];
  /** WebSocket mode: server `error` events. */
  readonly serverErrors: unknown[];
  /** Per response: ms from the request (HTTP) or its `response.create` frame (WebSocket) to the first output event. */
  readonly firstDeltaMs: number[];
  readonly startedAt: number;
}

/** The gist of a `response.completed` / `incomplete` / `failed` event (or a JSON response body). */
export interface TerminalResponse {
  readonly event: string;
  readonly id: string;
  readonly status: string;
  readonly usage: { input_tokens: number; output_tokens: number; input_tokens_details?: { cached_tokens?: number } } | undefined;
  readonly error: unknown;
  readonly outputTypes: string[];
}

const terminalEvents = new Set(['response.completed', 'response.incomplete', 'response.failed']);
/** Events that carry generated output (the first one marks time to first token). */
const deltaTypes = new Set(['response.output_text.delta', 'response.function_call_arguments.delta', 'response.reasoning_text.delta', 'response.reasoning_summary_text.delta', 'response.custom_tool_call_input.delta', 'content_block_delta']);

function terminalOf(event: { type?: unknown; response?: any }): TerminalResponse | undefined {
  if (typeof event.type !== 'string' || !terminalEvents.has(event.type) || !event.response) return undefined;
  const r = event.response;
  return { event: event.type, id: r.id, status: r.status, usage: r.usage ?? undefined, error: r.error ?? null, outputTypes: (r.output ?? []).map((o: { type: string }) => o.type) };
}

/** Terminal responses in an SSE stream or a JSON response body. */
export function terminalResponses(text: string, contentType: string | undefined): TerminalResponse[] {
  if (contentType?.includes('text/event-stream')) {
    const out: TerminalResponse[] = [];
    for (const block of text.split(/\r?\n\r?\n/)) {
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (!data || data === '[DONE]') continue;
      try {
        const t = terminalOf(JSON.parse(data));
        if (t) out.push(t);
      } catch {
        // not JSON: ignore
      }
    }
    return out;
  }
  try {
    const body = JSON.parse(text) as { object?: string };
    if (body.object === 'response') return [terminalOf({ type: 'response.completed', response: body })!].map((t) => ({ ...t, event: '(json)' }));
  } catch {
    // not JSON
  }
  return [];
}

/** A loopback proxy in front of Flint that records what a client sends. */
export interface LoggingProxy {
  readonly url: string;
  readonly exchanges: RecordedExchange[];
  close(): Promise<void>;
}

const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function frameText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/**
 * Starts a proxy on 127.0.0.1 that forwards HTTP (streaming, SSE included) and WebSocket
 * upgrades to `target` and records each exchange. The upstream's handshake answer (status,
 * refusal body, extra headers) is passed through, so a client sees what Flint answered.
 */
export async function startLoggingProxy(target: string, { maxResponseChars = 200_000 } = {}): Promise<LoggingProxy> {
  const upstream = new URL(target);
  const exchanges: RecordedExchange[] = [];
  const sockets = new Set<Socket>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const liveSockets = new Set<WebSocket>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const exchange = newExchange('http', req, parseBody(raw.toString('utf8')));
      exchanges.push(exchange);
      const headers = { ...req.headers, host: upstream.host };
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (up) => {
          exchange.status = up.statusCode;
          exchange.responseHeaders = up.headers;
          const outHeaders: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !hopByHop.has(k)) outHeaders[k] = v;
          res.writeHead(up.statusCode ?? 502, outHeaders);
          const isSse = String(up.headers['content-type'] ?? '').includes('text/event-stream');
          const decoder = new StringDecoder('utf8');
          let text = '';
          let body = '';
          let pending = '';
          const onBlock = (block: string) => {
            const lines = block.split(/\r?\n/);
            if (lines.every((l) => l.startsWith(':') || l === '')) return exchange.serverEventTypes.push('(comment)');
            const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
            if (!data || data === '[DONE]') return exchange.serverEventTypes.push(data ? '[DONE]' : '(no data)');
            try {
              const event = JSON.parse(data) as { type?: string };
              const type = typeof event.type === 'string' ? event.type : '(untyped)';
              exchange.serverEventTypes.push(type);
              if (exchange.firstDeltaMs.length === 0 && deltaTypes.has(type)) exchange.firstDeltaMs.push(Date.now() - exchange.startedAt);
              const t = terminalOf(event);
              if (t) exchange.responses.push(t);
              if (type === 'error') exchange.serverErrors.push(event);
            } catch {
              exchange.serverEventTypes.push('(non-json)');
            }
          };
          up.on('data', (c: Buffer) => {
            const chunk = decoder.write(c);
            if (text.length < maxResponseChars) text += chunk;
            if (isSse) {
              pending += chunk;
              const blocks = pending.split(/\r?\n\r?\n/);
              pending = blocks.pop() ?? '';
              for (const block of blocks) onBlock(block);
            } else body += chunk;
            res.write(c);
          });
          up.on('end', () => {
            exchange.responseText = text.slice(0, maxResponseChars);
            if (isSse) {
              if (pending.trim()) onBlock(pending);
            } else exchange.responses.push(...terminalResponses(body, up.headers['content-type']));
            res.end();
          });
          up.on('error', () => res.destroy());
        },
      );
      forward.on('error', (err) => {
        exchange.status = 502;
        exchange.responseText = String(err);
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
      res.on('close', () => {
        if (!res.writableFinished) forward.destroy();
      });
      forward.end(raw);
    });
  });

  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  server.on('upgrade', (req, socket, head) => {
    const exchange = newExchange('websocket', req, undefined);
    exchanges.push(exchange);
    const forwardHeaders: Record<string, string> = {};
    const skip = new Set(['host', 'connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length']);
    for (const [k, v] of Object.entries(req.headers)) if (!skip.has(k) && typeof v === 'string') forwardHeaders[k] = v;
    const protocols = req.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim()).filter(Boolean);
    const wsTarget = `ws://${upstream.host}${req.url ?? '/'}`;
    const up = new WebSocket(wsTarget, protocols ?? [], { headers: forwardHeaders, perMessageDeflate: false });
    let upgradeHeaders: IncomingHttpHeaders = {};
    up.on('upgrade', (response) => {
      upgradeHeaders = response.headers;
      exchange.status = response.statusCode;
      exchange.responseHeaders = response.headers;
    });
    up.on('unexpected-response', (_request, response) => {
      exchange.status = response.statusCode;
      exchange.responseHeaders = response.headers;
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => {
        const body = Buffer.concat(chunks);
        exchange.responseText = body.toString('utf8');
        const lines = [`HTTP/1.1 ${response.statusCode} ${response.statusMessage ?? ''}`];
        for (const [k, v] of Object.entries(response.headers)) if (!hopByHop.has(k) && k !== 'content-length') lines.push(`${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
        lines.push(`content-length: ${body.length}`, 'connection: close', '', '');
        socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), body]));
      });
    });
    up.on('error', (err) => {
      if (exchange.status === undefined) {
        exchange.status = 502;
        exchange.responseText = String(err);
        socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      }
    });
    up.on('open', () => {
      const onHeaders = (headers: string[]) => {
        for (const [k, v] of Object.entries(upgradeHeaders)) {
          if (['connection', 'upgrade', 'sec-websocket-accept', 'sec-websocket-extensions', 'sec-websocket-protocol'].includes(k) || v === undefined) continue;
          for (const value of Array.isArray(v) ? v : [v]) headers.push(`${k}: ${value}`);
        }
      };
      wss.once('headers', onHeaders);
      wss.handleUpgrade(req, socket, head, (client) => {
        liveSockets.add(client);
        liveSockets.add(up);
        let createdAt: number | undefined;
        client.on('message', (data, isBinary) => {
          const text = frameText(data);
          const message = isBinary ? { binary: text.length } : parseBody(text);
          exchange.clientMessages.push(message);
          if ((message as { type?: string; generate?: boolean })?.type === 'response.create' && (message as { generate?: boolean }).generate !== false) createdAt = Date.now();
          if (up.readyState === WebSocket.OPEN) up.send(isBinary ? data : text, { binary: isBinary });
        });
        up.on('message', (data, isBinary) => {
          const text = frameText(data);
          if (!isBinary) {
            const parsed = parseBody(text) as { type?: unknown } | string;
            const isEvent = typeof parsed === 'object' && parsed !== null && typeof parsed.type === 'string';
            exchange.serverEventTypes.push(isEvent ? (parsed.type as string) : '(non-json)');
            if (isEvent) {
              if (createdAt !== undefined && deltaTypes.has(parsed.type as string)) {
                exchange.firstDeltaMs.push(Date.now() - createdAt);
                createdAt = undefined;
              }
              const t = terminalOf(parsed);
              if (t) exchange.responses.push(t);
              if (parsed.type === 'error') exchange.serverErrors.push(parsed);
            }
          }
          if (client.readyState === WebSocket.OPEN) client.send(isBinary ? data : text, { binary: isBinary });
        });
        client.on('close', (code, reason) => {
          exchange.closed ??= { by: 'client', code, reason: reason.toString() };
          liveSockets.delete(client);
          if (up.readyState === WebSocket.OPEN) up.close(code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1000);
        });
        up.on('close', (code, reason) => {
          exchange.closed ??= { by: 'server', code, reason: reason.toString() };
          liveSockets.delete(up);
          if (client.readyState === WebSocket.OPEN) client.close(code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1000, reason);
        });
        client.on('error', () => up.terminate());
        up.on('error', () => client.terminate());
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: async () => {
      for (const s of liveSockets) s.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      wss.close();
    },
  };
}

/** The shape of one request body or client frame: its keys, input item types and tool types. */
export interface RequestShape {
  readonly keys: string[];
  readonly inputItems?: string[];
  readonly tools?: string[];
  readonly toolChoice?: unknown;
}

function shapeOf(body: unknown): RequestShape | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  const items = Array.isArray(b.input) ? b.input : Array.isArray(b.messages) ? b.messages : undefined;
  return {
    keys: Object.keys(b),
    inputItems: items?.map((i: { type?: string; role?: string }) => [i.type, i.role].filter(Boolean).join(':') || '(untyped)'),
    tools: Array.isArray(b.tools) ? b.tools.map((t: { type?: string; name?: string; function?: { name?: string } }) => `${t.type}${t.name ? `:${t.name}` : t.function?.name ? `:${t.function.name}` : ''}`) : undefined,
    toolChoice: b.tool_choice,
  };
}

/** A compact account of every exchange: what a client sends, without the text. */
export function summarizeExchanges(exchanges: readonly RecordedExchange[]): unknown[] {
  return exchanges.map((e) => ({
    kind: e.kind,
    method: e.method,
    path: e.path,
    status: e.status,
    headers: Object.fromEntries(Object.entries(e.headers).filter(([k]) => !['host', 'content-length', 'connection', 'sec-websocket-key', 'accept-encoding'].includes(k))),
    body: shapeOf(e.body),
    responseHeaders: Object.fromEntries(Object.entries(e.responseHeaders ?? {}).filter(([k]) => k.startsWith('x-') || k === 'content-type' || k === 'openai-model')),
    frames: e.clientMessages.length ? e.clientMessages.map((m) => ({ type: (m as { type?: string }).type, ...shapeOf(m) })) : undefined,
    responses: e.responses.map((r) => ({ event: r.event, status: r.status, outputTypes: r.outputTypes, usage: r.usage })),
    closed: e.closed,
    errors: e.status !== undefined && e.status >= 400 ? e.responseText?.slice(0, 500) : e.serverErrors.length ? e.serverErrors : undefined,
  }));
}

/** A fresh record of one client exchange. */
function newExchange(kind: RecordedExchange['kind'], req: http.IncomingMessage, body: RecordedExchange['body']): RecordedExchange {
  return {
    kind,
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers: req.headers,
    body,
    clientMessages: [],
    serverEventTypes: [],
    responses: [],
    serverErrors: [],
    firstDeltaMs: [],
    startedAt: Date.now(),
  };
}

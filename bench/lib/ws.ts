/**
 * The `ws` client, loaded at run time. `ws` is in node_modules as a dependency of
 * @fastify/websocket but has no type package here, so this file declares the small part of its
 * API the bench uses instead of adding a dependency or an ambient module declaration.
 */
import { createRequire } from 'node:module';

type Listener = (...args: never[]) => void;

export interface WsSocket {
  readonly readyState: number;
  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'pong', listener: (data: Buffer) => void): this;
  on(event: 'unexpected-response', listener: (req: unknown, res: { statusCode?: number; resume(): void }) => void): this;
  once(event: 'open', listener: () => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'pong', listener: (data: Buffer) => void): this;
  once(event: 'unexpected-response', listener: (req: unknown, res: { statusCode?: number; resume(): void }) => void): this;
  off(event: string, listener: Listener): this;
  send(data: string, cb?: (err?: Error) => void): void;
  ping(data?: Buffer, mask?: boolean, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

export interface WsOptions {
  /** Off: the gateway's frames are small JSON, and compression would be client-side work in the measurement. */
  readonly perMessageDeflate?: boolean;
  readonly handshakeTimeout?: number;
  /** Extra handshake headers (e.g. a session name). */
  readonly headers?: Readonly<Record<string, string>>;
}

type WsConstructor = new (url: string, options?: WsOptions) => WsSocket;

/** ws.OPEN */
export const wsOpen = 1;

let ctor: WsConstructor | undefined;

/** Opens a client socket (lazily requiring `ws`). */
export function openSocket(url: string, options: WsOptions = {}): WsSocket {
  ctor ??= createRequire(import.meta.url)('ws') as WsConstructor;
  return new ctor(url, { perMessageDeflate: false, ...options });
}

/** `http://host:port` → `ws://host:port/path`. */
export function toWsUrl(baseUrl: string, pathname: string): string {
  const url = new URL(pathname, baseUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

/** Resolves once the socket is open; rejects on an HTTP answer other than 101, an error or the timeout. */
export function whenOpen(socket: WsSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`WebSocket did not open within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      socket.terminate();
      reject(new Error(`upgrade refused with HTTP ${res.statusCode ?? '?'}`));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How the hub serves one file. */
export interface HubFileOptions {
  /** Only with `Authorization: Bearer <token>` (a gated repository); else 401 as the hub answers. */
  readonly token?: string;
  /** What `X-Linked-Etag` states instead of the real SHA-256 (a hub whose file changed under it). */
  readonly statedSha256?: string;
}

interface HubFile extends HubFileOptions {
  readonly data: Buffer;
  readonly sha256: string;
  readonly name: string;
}

/** One request the hub saw. */
export interface HubRequest {
  readonly method: string;
  readonly path: string;
  readonly range?: string;
  readonly authorization?: string;
}

/**
 * A Hugging Face stand-in on 127.0.0.1 that answers the URL shapes node-llama-cpp's downloader
 * uses: `/{owner}/{repo}/resolve/{revision}/{path}` (HEAD and GET) redirects with `X-Linked-Etag`
 * and `X-Linked-Size` to a content URL that honours byte ranges; `/v2/{owner}/{repo}/manifests/{tag}`
 * answers with the GGUF file of a tag; unknown paths get the hub's 404. `stallRanges` makes every
 * ranged read that does not start at byte 0 send half its bytes and hang (a dead connection).
 */
export class LoopbackHub implements AsyncDisposable {
  readonly #server: Server;
  readonly #files = new Map<string, HubFile>();
  readonly #bySha = new Map<string, HubFile>();
  readonly #manifests = new Map<string, string>();
  readonly #sockets = new Set<Socket>();
  readonly requests: HubRequest[] = [];
  stallRanges = false;
  #url = '';

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a hub on a free loopback port. */
  static async start(): Promise<LoopbackHub> {
    const hub = new LoopbackHub();
    await new Promise<void>((resolve) => hub.#server.listen(0, '127.0.0.1', resolve));
    const address = hub.#server.address() as { port: number };
    hub.#url = `http://127.0.0.1:${address.port}/`;
    return hub;
  }

  /** The endpoint to give as `HF_ENDPOINT` (ends in '/'). */
  get url(): string {
    return this.#url;
  }

  /** Serves `data` as `repoPath` in `repo` (`owner/name`) on the `main` revision; returns its SHA-256. */
  addFile(repo: string, repoPath: string, data: Buffer, options: HubFileOptions = {}): string {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const file = { ...options, data, sha256, name: repoPath.split('/').pop()! };
    this.#files.set(`${repo}/resolve/main/${repoPath}`, file);
    this.#bySha.set(sha256, file);
    return sha256;
  }

  /** `hf:<repo>:<tag>` resolves to `repoPath` (what the hub's manifest API answers). */
  addManifest(repo: string, tag: string, repoPath: string): void {
    this.#manifests.set(`${repo}/manifests/${tag.toLowerCase()}`, repoPath);
  }

  /** Ranged reads of content (not the redirects), as `[start, end]` byte offsets. */
  rangesServed(): Array<[number, number]> {
    return this.requests.flatMap((r) => {
      const m = r.path.startsWith('/xet-bridge/') && r.range ? /^bytes=(\d+)-(\d+)?$/.exec(r.range) : null;
      return m ? [[Number(m[1]), Number(m[2] ?? -1)] as [number, number]] : [];
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.#url);
    const path = decodeURIComponent(url.pathname);
    this.requests.push({ method: req.method ?? 'GET', path, range: req.headers.range, authorization: req.headers.authorization });
    const manifest = /^\/v2\/([^/]+\/[^/]+)\/manifests\/([^/]+)$/.exec(path);
    if (manifest && req.method === 'GET') {
      const rfilename = this.#manifests.get(`${manifest[1]}/manifests/${manifest[2].toLowerCase()}`);
      if (!rfilename) return this.#notFound(res);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ggufFile: { rfilename, size: this.#files.get(`${manifest[1]}/resolve/main/${rfilename}`)?.data.length } }));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+\/resolve\/[^/]+\/.+)$/.exec(path);
    if (resolve && (req.method === 'GET' || req.method === 'HEAD')) {
      const file = this.#files.get(resolve[1]);
      if (!file) return this.#notFound(res);
      if (file.token && req.headers.authorization !== `Bearer ${file.token}`) {
        res.writeHead(401, { 'content-type': 'application/json', 'x-error-code': 'GatedRepo' }).end(JSON.stringify({ error: 'Access to this model is restricted. You must be authenticated to access it.' }));
        return;
      }
      res
        .writeHead(302, {
          location: `/xet-bridge/${file.sha256}?filename=${encodeURIComponent(file.name)}&sig=loopback`,
          'x-linked-etag': `"${file.statedSha256 ?? file.sha256}"`,
          'x-linked-size': String(file.data.length),
          'x-repo-commit': '0123456789abcdef0123456789abcdef01234567',
          etag: `"${file.sha256.slice(0, 40)}"`,
        })
        .end();
      return;
    }
    const content = /^\/xet-bridge\/([0-9a-f]{64})$/.exec(path);
    const file = content ? this.#bySha.get(content[1]) : undefined;
    if (file && (req.method === 'GET' || req.method === 'HEAD')) return this.#serveContent(req, res, file);
    this.#notFound(res);
  }

  #serveContent(req: IncomingMessage, res: ServerResponse, file: HubFile): void {
    const headers = {
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="${file.name}"`,
    };
    const range = req.headers.range ? /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range) : null;
    if (!range) {
      res.writeHead(200, { ...headers, 'content-length': String(file.data.length) });
      if (req.method === 'HEAD') return void res.end();
      res.end(file.data);
      return;
    }
    const start = Number(range[1]);
    const end = Math.min(range[2] === undefined ? file.data.length - 1 : Number(range[2]), file.data.length - 1);
    if (start > end) {
      res.writeHead(416, { 'content-range': `bytes */${file.data.length}` }).end();
      return;
    }
    res.writeHead(206, { ...headers, 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${file.data.length}` });
    if (req.method === 'HEAD') return void res.end();
    const body = file.data.subarray(start, end + 1);
    if (this.stallRanges && start > 0) {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      return;
    }
    res.end(body);
  }

  #notFound(res: ServerResponse): void {
    res.writeHead(404, { 'content-type': 'application/json', 'x-error-code': 'EntryNotFound' }).end(JSON.stringify({ error: 'Entry not found' }));
  }
}

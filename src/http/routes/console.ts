import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Paths the console serves: open even when API keys are configured (they hold no data). */
export const consolePaths: readonly string[] = ['/', '/console', '/console/', '/console/console.js', '/console/console.css'];

/** Scripts, styles and connections from this server only; nothing else loads. */
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

function load(file: string, type: string): Asset {
  const body = readFileSync(new URL(`../../console/${file}`, import.meta.url));
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * The web console (`src/console/`: plain HTML, CSS and JavaScript, no build step) on `/` and
 * `/console/`. Its files are read once at start-up and served with ETags; the page asks for an
 * API key when the server has keys and sends it with every call it makes.
 */
export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  const index = load('index.html', 'text/html; charset=utf-8');
  const script = load('console.js', 'text/javascript; charset=utf-8');
  const style = load('console.css', 'text/css; charset=utf-8');
  const serve = (asset: Asset) => async (request: FastifyRequest, reply: FastifyReply) => {
    void reply
      .header('etag', asset.etag)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', contentSecurityPolicy);
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  app.get('/', serve(index));
  app.get('/console/', serve(index));
  app.get('/console', async (_request, reply) => reply.redirect('/console/', 308));
  app.get('/console/console.js', serve(script));
  app.get('/console/console.css', serve(style));
}

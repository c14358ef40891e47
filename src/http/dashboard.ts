import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The web dashboard: static HTML, CSS and ES modules that talk to /api like any script would.
 * The files sit beside this module in dashboard/ (the build copies them next to the compiled
 * file, so dist/ runs alone) and are read once, at start: a handful of small files.
 * Like RabbitMQ's UI, the assets need no login; the page logs in through the API.
 */

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Kept by the browser but revalidated (a 304 on the ETag), so an upgrade shows at once. */
const CACHE_CONTROL = 'no-cache';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Scripts only from here: a name that slipped into markup would still not run. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const PREFIX = '/ui/';

/**
 * Beside this file (dist/http/dashboard after `npm run build`), else the source folder of the
 * checkout it was compiled from (another tsconfig compiling src/ elsewhere copies nothing).
 */
function findAssets(): string | undefined {
  const candidates = [path.join(__dirname, 'dashboard')];
  for (let d = __dirname; path.dirname(d) !== d; d = path.dirname(d)) candidates.push(path.join(d, 'src', 'http', 'dashboard'));
  return candidates.find((c) => existsSync(path.join(c, 'index.html')));
}

/** Serves the page at / and its files under /ui/. Without the files, the API runs alone. */
export function registerDashboard(app: FastifyInstance, dir = findAssets()): void {
  if (dir === undefined) return;
  const assets = new Map<string, Asset>();
  for (const file of listFiles(dir)) {
    const type = TYPES[path.extname(file)];
    if (type === undefined) continue;
    const rel = path.relative(dir, file).split(path.sep).join('/');
    assets.set(rel, asset(readFileSync(file), type));
  }
  // uPlot comes from its npm package, not a copy in the repo.
  const uplot = path.dirname(require.resolve('uplot/package.json'));
  assets.set('vendor/uPlot.esm.js', asset(readFileSync(path.join(uplot, 'dist', 'uPlot.esm.js')), TYPES['.js']));
  assets.set('vendor/uPlot.min.css', asset(readFileSync(path.join(uplot, 'dist', 'uPlot.min.css')), TYPES['.css']));

  const index = assets.get('index.html');
  if (index === undefined) throw new Error(`dashboard: no index.html in ${dir}`);

  const send = (req: FastifyRequest, reply: FastifyReply, a: Asset, extra?: Record<string, string>) => {
    reply.header('etag', a.etag).header('cache-control', CACHE_CONTROL).header('x-content-type-options', 'nosniff');
    if (extra !== undefined) reply.headers(extra);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    reply.code(200).type(a.type);
    return reply.send(req.method === 'HEAD' ? undefined : a.body);
  };

  app.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: (req, reply) => send(req, reply, index, PAGE_HEADERS),
  });
  app.route({
    method: ['GET', 'HEAD'],
    url: `${PREFIX}*`,
    handler: (req, reply) => {
      const a = assets.get((req.params as { '*': string })['*']);
      if (a === undefined) return reply.callNotFound();
      return send(req, reply, a);
    },
  });
}

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"` };
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

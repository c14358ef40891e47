// Development aid, not part of the broker: serves the dashboard from src/ (re-read on every
// start) and forwards /api to a management API, e.g. RabbitMQ's, to check the page against
// its exact JSON. Needs `npm run build` first (it loads dist/http/dashboard.js).
//   node scripts/dashboard-dev.mjs [port=15680] [target=http://127.0.0.1:15672]
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fastify from 'fastify';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { registerDashboard } = require(path.join(root, 'dist', 'http', 'dashboard.js'));
const port = Number(process.argv[2] ?? 15680);
const target = process.argv[3] ?? 'http://127.0.0.1:15672';

const app = fastify();
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
registerDashboard(app, path.join(root, 'src', 'http', 'dashboard'));
app.all('/api/*', async (req, reply) => {
  const headers = {};
  for (const h of ['authorization', 'content-type', 'x-reason']) if (req.headers[h]) headers[h] = req.headers[h];
  const res = await fetch(target + req.url, { method: req.method, headers, body: req.body?.length ? req.body : undefined });
  reply.code(res.status);
  // As the broker answers, WWW-Authenticate included (it changes how browsers treat a 401).
  for (const [k, v] of res.headers)
    if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive'].includes(k)) reply.header(k, v);
  return reply.send(Buffer.from(await res.arrayBuffer()));
});
await app.listen({ port, host: '127.0.0.1' });
console.log(`dashboard on http://127.0.0.1:${port}/ -> ${target}`);

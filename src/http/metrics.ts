import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ManagementContext } from './context';
import { version } from '../config';
import { CONTENT_TYPE, Exposition, label } from './metrics/exposition';
import { ALL_GROUPS, DETAILED_GROUPS, type Group } from './metrics/groups';
import { Scrape } from './metrics/scrape';

/**
 * Prometheus metrics, as RabbitMQ's rabbitmq_prometheus plugin serves them, with its metric
 * names so that its Grafana dashboards work:
 *   /metrics             everything, objects summed (the plugin's default)
 *   /metrics/per-object  the same, one sample per queue, exchange, channel and connection
 *   /metrics/detailed    chosen groups (?family=queue_coarse_metrics&vhost=/), per object
 * RabbitMQ serves these on a port of their own (15692); Leveret serves them on its HTTP
 * management port. As in RabbitMQ they need no credentials. Everything is read from the
 * model at scrape time: nothing is counted per message for them.
 */
export function registerMetricsRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const product = version();
  const serve = (render: (req: FastifyRequest) => Buffer) => (req: FastifyRequest, reply: FastifyReply) => {
    void reply.type(CONTENT_TYPE).header('cache-control', 'no-cache').send(render(req));
  };
  app.route({ method: ['GET', 'HEAD'], url: '/metrics', handler: serve(() => render(ctx, product, ALL_GROUPS, 'aggregated')) });
  app.route({ method: ['GET', 'HEAD'], url: '/metrics/per-object', handler: serve(() => render(ctx, product, ALL_GROUPS, 'per-object')) });
  app.route({
    method: ['GET', 'HEAD'],
    url: '/metrics/detailed',
    handler: serve((req) => {
      const query = req.query as Record<string, string | string[] | undefined>;
      const groups = values(query.family).flatMap((f) => DETAILED_GROUPS.get(f) ?? []);
      const vhosts = query.vhost === undefined ? null : new Set(values(query.vhost));
      return render(ctx, product, [...new Set(groups)], 'detailed', vhosts);
    }),
  });
}

type Endpoint = 'aggregated' | 'per-object' | 'detailed';

/** A query parameter given once, many times, or as a comma-separated list. */
const values = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).filter((s) => s !== '');

/** RabbitMQ's detailed endpoint renames its own metrics, not others'. */
const detailedName = (name: string): string =>
  name.startsWith('rabbitmq_') ? 'rabbitmq_detailed_' + name.slice('rabbitmq_'.length) : name;

function render(
  ctx: ManagementContext,
  product: string,
  groups: readonly Group<unknown>[],
  endpoint: Endpoint,
  vhosts: ReadonlySet<string> | null = null,
): Buffer {
  const out = new Exposition();
  const scrape = new Scrape(ctx, vhosts);
  for (const g of groups) writeGroup(out, g, scrape, endpoint);
  if (endpoint === 'per-object' || (endpoint === 'detailed' && groups.some((g) => g.id.startsWith('queue_')))) {
    const name = endpoint === 'detailed' ? 'rabbitmq_detailed_queue_info' : 'rabbitmq_queue_info';
    out.family(name, 'gauge', "A metric with a constant '1' value and labels that provide some queue details");
    // Every queue is a classic one, led by this (only) node.
    const details = `${label('queue_type', 'rabbit_classic_queue')},${label('membership', 'leader')}`;
    for (const r of scrape.queues) out.sample(name, `${label('vhost', r.vhost)},${label('queue', r.queue.name)},${details}`, 1);
  }
  writeInfo(out, ctx, product, endpoint);
  return out.toBuffer();
}

function writeGroup(out: Exposition, g: Group<unknown>, scrape: Scrape, endpoint: Endpoint): void {
  const objects = g.objects(scrape);
  const summed = g.perObject && endpoint === 'aggregated';
  // Escaped once per object, shared by the group's metrics.
  const labels = summed ? [] : objects.map((o) => g.labels(o));
  for (const metric of g.metrics) {
    const name = endpoint === 'detailed' ? detailedName(metric.name) : metric.name;
    out.family(name, metric.type, metric.help);
    if (summed) {
      let sum = 0;
      for (const o of objects) sum += metric.read(o) ?? 0;
      out.sample(name, '', sum);
      continue;
    }
    for (let i = 0; i < objects.length; i++) {
      const v = metric.read(objects[i]);
      if (v !== null) out.sample(name, labels[i], v);
    }
  }
}

/** Who is answering: dashboards join on identity_info's node and cluster labels. */
function writeInfo(out: Exposition, ctx: ManagementContext, product: string, endpoint: Endpoint): void {
  out.family('rabbitmq_build_info', 'untyped', 'Leveret & Node.js version info');
  out.sample(
    'rabbitmq_build_info',
    [label('product_name', 'Leveret'), label('product_version', product), label('nodejs_version', process.version)].join(','),
    1,
  );
  out.family('rabbitmq_identity_info', 'untyped', 'Leveret node & cluster identity info');
  // A single node is its own cluster; RabbitMQ names a cluster after its first node too.
  out.sample(
    'rabbitmq_identity_info',
    [label('rabbitmq_node', ctx.nodeName), label('rabbitmq_cluster', ctx.nodeName), label('rabbitmq_endpoint', endpoint)].join(','),
    1,
  );
}

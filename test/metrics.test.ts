// Prometheus metrics at /metrics, /metrics/per-object and /metrics/detailed, with RabbitMQ's
// rabbitmq_prometheus names: scraped over HTTP from a broker that real clients (amqplib)
// use, checked by Prometheus's own `promtool check metrics`, and the values asserted.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { waitFor } from './helpers/clients';

const T = 60_000;
const HOSTILE = 'prom "quoted" back\\slash\nnew line';

let b: StartedBroker;

beforeAll(async () => {
  b = await startBroker();
}, T);

afterAll(async () => {
  await b?.stop();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Reads the text format back: samples with their label values unescaped. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2]?.slice(1, -1) ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let lm: RegExpExecArray | null;
    while ((lm = re.exec(body)) !== null) {
      labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    if (re.lastIndex !== 0 && re.lastIndex !== body.length) throw new Error(`bad labels: ${body}`);
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(path: string): Promise<{ text: string; samples: Sample[]; contentType: string | null; status: number }> {
  // No credentials: RabbitMQ's Prometheus endpoint needs none.
  const res = await fetch(`http://127.0.0.1:${b.httpPort}${path}`);
  const text = await res.text();
  return { text, samples: res.status === 200 ? parse(text) : [], contentType: res.headers.get('content-type'), status: res.status };
}

/** The one sample of `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0].value;
}

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p)) ?? 'promtool';

/** Prometheus's own check of the format and its lint (names, HELP, counters' _total...). */
function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool (Debian's prometheus package) is needed: ${r.error.message}`);
  return { status: r.status, output: r.stdout + r.stderr };
}

const GLOBAL = { protocol: 'amqp091' };
const CLASSIC = { protocol: 'amqp091', queue_type: 'rabbit_classic_queue' };

describe('Prometheus metrics', () => {
  it(
    'counts connections, channels, consumers, queue depths and message totals, per object with escaped labels',
    async () => {
      const before = await scrape('/metrics');
      expect(before.status).toBe(200);
      expect(before.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
      const opened0 = value(before.samples, 'rabbitmq_connections_opened_total');
      const received0 = value(before.samples, 'rabbitmq_global_messages_received_total', GLOBAL);
      const delivered0 = value(before.samples, 'rabbitmq_global_messages_delivered_total', CLASSIC);

      const c1 = await amqp.connect(b.url);
      const c2 = await amqp.connect(b.url);
      try {
        const pub = await c1.createConfirmChannel();
        const cons = await c1.createChannel();
        const other = await c2.createChannel();
        await pub.assertQueue('prom-a', { durable: false });
        await pub.assertQueue(HOSTILE, { durable: false });
        for (let i = 0; i < 5; i++) pub.sendToQueue('prom-a', Buffer.from(`a${i}`));
        for (let i = 0; i < 3; i++) pub.sendToQueue(HOSTILE, Buffer.from(`h${i}`));
        await pub.waitForConfirms();
        await cons.prefetch(2);
        const got: amqp.ConsumeMessage[] = [];
        let ackAsTheyCome = false;
        await cons.consume(
          'prom-a',
          (msg) => {
            if (msg === null) return;
            got.push(msg);
            if (ackAsTheyCome) cons.ack(msg);
          },
          { noAck: false },
        );
        await waitFor(() => got.length === 2, 5000, 'two deliveries');

        const agg = await scrape('/metrics');
        const s = agg.samples;
        expect(value(s, 'rabbitmq_connections')).toBe(2);
        expect(value(s, 'rabbitmq_channels')).toBe(3);
        expect(value(s, 'rabbitmq_consumers')).toBe(1);
        expect(value(s, 'rabbitmq_queues')).toBe(2);
        // Aggregated, as RabbitMQ's default endpoint: one unlabelled total per metric.
        expect(value(s, 'rabbitmq_queue_messages_ready')).toBe(6);
        expect(value(s, 'rabbitmq_queue_messages_unacked')).toBe(2);
        expect(value(s, 'rabbitmq_queue_messages')).toBe(8);
        expect(s.filter((x) => x.name === 'rabbitmq_queue_messages_ready')[0].labels).toEqual({});
        expect(value(s, 'rabbitmq_connections_opened_total') - opened0).toBe(2);
        expect(value(s, 'rabbitmq_channels_opened_total')).toBeGreaterThanOrEqual(3);
        expect(value(s, 'rabbitmq_queues_created_total')).toBeGreaterThanOrEqual(2);
        expect(value(s, 'rabbitmq_global_messages_received_total', GLOBAL) - received0).toBe(8);
        expect(value(s, 'rabbitmq_global_messages_routed_total', GLOBAL)).toBeGreaterThanOrEqual(8);
        expect(value(s, 'rabbitmq_global_messages_confirmed_total', GLOBAL)).toBeGreaterThanOrEqual(8);
        expect(value(s, 'rabbitmq_global_messages_delivered_total', CLASSIC) - delivered0).toBe(2);
        expect(value(s, 'rabbitmq_global_messages_delivered_consume_manual_ack_total', CLASSIC)).toBeGreaterThanOrEqual(2);
        expect(value(s, 'rabbitmq_global_publishers', GLOBAL)).toBe(1);
        expect(value(s, 'rabbitmq_global_consumers', GLOBAL)).toBe(1);
        expect(value(s, 'rabbitmq_process_resident_memory_bytes')).toBeGreaterThan(1e6);
        expect(value(s, 'rabbitmq_resident_memory_limit_bytes')).toBeGreaterThan(value(s, 'rabbitmq_process_resident_memory_bytes'));
        expect(value(s, 'rabbitmq_disk_space_available_bytes')).toBeGreaterThan(0);
        expect(value(s, 'rabbitmq_process_open_fds')).toBeGreaterThan(3);
        expect(value(s, 'rabbitmq_process_max_fds')).toBeGreaterThanOrEqual(value(s, 'rabbitmq_process_open_fds'));
        expect(value(s, 'rabbitmq_process_max_tcp_sockets')).toBeGreaterThan(value(s, 'rabbitmq_process_open_tcp_sockets'));
        expect(value(s, 'rabbitmq_alarms_memory_used_watermark')).toBe(0);
        expect(value(s, 'rabbitmq_alarms_free_disk_space_watermark')).toBe(0);
        expect(value(s, 'rabbitmq_alarms_file_descriptor_limit')).toBe(0);
        expect(value(s, 'rabbitmq_build_info', { product_name: 'Leveret' })).toBe(1);
        const identity = s.find((x) => x.name === 'rabbitmq_identity_info')!;
        expect(identity.labels).toMatchObject({ rabbitmq_endpoint: 'aggregated' });
        expect(identity.labels.rabbitmq_node).toMatch(/^leveret@/);
        expect(promtool(agg.text)).toEqual({ status: 0, output: '' });

        const per = await scrape('/metrics/per-object');
        const p = per.samples;
        const a = { vhost: '/', queue: 'prom-a' };
        const h = { vhost: '/', queue: HOSTILE };
        expect(value(p, 'rabbitmq_queue_messages_ready', a)).toBe(3);
        expect(value(p, 'rabbitmq_queue_messages_unacked', a)).toBe(2);
        expect(value(p, 'rabbitmq_queue_messages', a)).toBe(5);
        expect(value(p, 'rabbitmq_queue_consumers', a)).toBe(1);
        expect(value(p, 'rabbitmq_queue_messages_published_total', a)).toBe(5);
        expect(value(p, 'rabbitmq_queue_messages_delivered_ack_total', a)).toBe(2);
        // The hostile name survives the round trip through the escaped label.
        expect(value(p, 'rabbitmq_queue_messages_ready', h)).toBe(3);
        expect(value(p, 'rabbitmq_queue_messages_unacked', h)).toBe(0);
        expect(value(p, 'rabbitmq_queue_info', { ...h, queue_type: 'rabbit_classic_queue' })).toBe(1);
        expect(per.text).toContain('queue="prom \\"quoted\\" back\\\\slash\\nnew line"');
        expect(value(p, 'rabbitmq_exchange_messages_published_total', { vhost: '/', exchange: '' })).toBe(8);
        expect(
          p
            .filter((x) => x.name === 'rabbitmq_connection_channels')
            .map((x) => x.value)
            .sort(),
        ).toEqual([1, 2]);
        expect(
          p
            .filter((x) => x.name === 'rabbitmq_channel_messages_published_total')
            .map((x) => x.value)
            .sort(),
        ).toEqual([0, 0, 8]);
        expect(value(p, 'rabbitmq_identity_info', { rabbitmq_endpoint: 'per-object' })).toBe(1);
        expect(promtool(per.text)).toEqual({ status: 0, output: '' });

        // More traffic: acks, a basic.get without ack, a mandatory message nobody takes.
        ackAsTheyCome = true;
        for (const msg of got.slice(0, 2)) cons.ack(msg);
        await waitFor(() => got.length === 5, 5000, 'the rest delivered');
        const g = await other.get(HOSTILE, { noAck: true });
        expect(g).not.toBe(false);
        pub.publish('', 'prom-nobody-here', Buffer.from('x'), { mandatory: true });
        await pub.waitForConfirms();
        await pub.close();

        const after = await scrape('/metrics');
        const t = after.samples;
        expect(value(t, 'rabbitmq_global_messages_received_total', GLOBAL) - received0).toBe(9);
        expect(value(t, 'rabbitmq_global_messages_delivered_total', CLASSIC) - delivered0).toBe(6);
        expect(value(t, 'rabbitmq_global_messages_delivered_get_auto_ack_total', CLASSIC)).toBeGreaterThanOrEqual(1);
        expect(value(t, 'rabbitmq_global_messages_acknowledged_total', CLASSIC)).toBeGreaterThanOrEqual(5);
        expect(value(t, 'rabbitmq_global_messages_unroutable_returned_total', GLOBAL)).toBeGreaterThanOrEqual(1);
        // The publishing channel is closed: RabbitMQ's per-channel sum drops, the global counter does not.
        expect(value(t, 'rabbitmq_channel_messages_published_total')).toBe(0);
        expect(value(t, 'rabbitmq_channels')).toBe(2);
        expect(value(t, 'rabbitmq_channels_closed_total')).toBeGreaterThanOrEqual(1);
        expect(value(t, 'rabbitmq_channels_opened_total') - value(t, 'rabbitmq_channels_closed_total')).toBe(2);
        expect(value(t, 'rabbitmq_global_publishers', GLOBAL)).toBe(0);
        expect(value(t, 'rabbitmq_queue_messages_ready')).toBe(2);
        expect(value(t, 'rabbitmq_queue_messages_unacked')).toBe(0);

        const deleted0 = value(t, 'rabbitmq_queues_deleted_total');
        await other.deleteQueue(HOSTILE);
        const gone = (await scrape('/metrics')).samples;
        expect(value(gone, 'rabbitmq_queues_deleted_total') - deleted0).toBe(1);
        expect(value(gone, 'rabbitmq_queues')).toBe(1);
        await other.deleteQueue('prom-a');
      } finally {
        await c1.close().catch(() => {});
        await c2.close().catch(() => {});
      }
      // The server sees the sockets close a moment after the clients do.
      await waitFor(async () => value((await scrape('/metrics')).samples, 'rabbitmq_connections') === 0, 5000, 'connections gone');
      const closed = (await scrape('/metrics')).samples;
      expect(value(closed, 'rabbitmq_connections_opened_total') - value(closed, 'rabbitmq_connections_closed_total')).toBe(0);
    },
    T,
  );

  it(
    'serves chosen families at /metrics/detailed, filtered by vhost',
    async () => {
      const c = await amqp.connect(b.url);
      try {
        const ch = await c.createChannel();
        await ch.assertQueue('prom-detailed', { durable: false });
        ch.sendToQueue('prom-detailed', Buffer.from('x'));
        await waitFor(
          async () => value((await scrape('/metrics')).samples, 'rabbitmq_queue_messages_ready') >= 1,
          5000,
          'the message queued',
        );

        const d = await scrape('/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count&vhost=%2F');
        expect(value(d.samples, 'rabbitmq_detailed_queue_messages_ready', { vhost: '/', queue: 'prom-detailed' })).toBe(1);
        expect(value(d.samples, 'rabbitmq_detailed_queue_consumers', { vhost: '/', queue: 'prom-detailed' })).toBe(0);
        expect(value(d.samples, 'rabbitmq_detailed_queue_info', { vhost: '/', queue: 'prom-detailed' })).toBe(1);
        expect(value(d.samples, 'rabbitmq_identity_info', { rabbitmq_endpoint: 'detailed' })).toBe(1);
        // Only what was asked for.
        expect(d.samples.filter((x) => x.name.includes('channel') || x.name.startsWith('rabbitmq_global'))).toEqual([]);
        expect(promtool(d.text)).toEqual({ status: 0, output: '' });

        const other = await scrape('/metrics/detailed?family=queue_coarse_metrics&vhost=elsewhere');
        expect(other.samples.filter((x) => x.name.startsWith('rabbitmq_detailed_queue'))).toEqual([]);
        const none = await scrape('/metrics/detailed');
        expect(none.samples.map((x) => x.name).sort()).toEqual(['rabbitmq_build_info', 'rabbitmq_identity_info']);
        await ch.deleteQueue('prom-detailed');
      } finally {
        await c.close();
      }
    },
    T,
  );

  it('scrapes 10,000 queues, one sample each per object, and promtool accepts it (the time is logged, not asserted)', async () => {
    const c = await amqp.connect(b.url);
    const N = 10_000;
    try {
      const ch = await c.createChannel();
      for (let i = 0; i < N; i += 1000) {
        await Promise.all(Array.from({ length: 1000 }, (_, j) => ch.assertQueue(`prom-many-${i + j}`, { durable: false })));
      }
      ch.sendToQueue('prom-many-0', Buffer.from('x'));
      await waitFor(async () => value((await scrape('/metrics')).samples, 'rabbitmq_queues') === N, 10_000, 'all queues');

      // From request to the last byte received; parsing it here is not the server's time.
      const time = async (path: string) => {
        const t0 = performance.now();
        const res = await fetch(`http://127.0.0.1:${b.httpPort}${path}`);
        const text = await res.text();
        const ms = performance.now() - t0;
        return { ms, r: { text, samples: parse(text) } };
      };
      await time('/metrics/per-object'); // warm up
      const agg = await time('/metrics');
      const per = await time('/metrics/per-object');
      console.log(
        `metrics with ${N} queues: /metrics ${agg.ms.toFixed(1)} ms (${agg.r.text.length} bytes), ` +
          `/metrics/per-object ${per.ms.toFixed(1)} ms (${per.r.text.length} bytes, ${per.r.samples.length} samples)`,
      );
      expect(value(agg.r.samples, 'rabbitmq_queue_messages_ready')).toBe(1);
      expect(per.r.samples.filter((x) => x.name === 'rabbitmq_queue_messages_ready')).toHaveLength(N);
      expect(value(per.r.samples, 'rabbitmq_queue_messages_ready', { queue: 'prom-many-0' })).toBe(1);
      expect(promtool(per.r.text)).toEqual({ status: 0, output: '' });
    } finally {
      await c.close();
    }
  }, 120_000);
});

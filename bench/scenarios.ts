/**
 * The leveret-perf arguments of the timed scenarios, shared by bench:compare (which runs them
 * against both brokers) and bench:profile (which records where Leveret spends its time in them).
 */
export const CONSUMER_OPTS = ['--prefetch', '1000', '--multi-ack-every', '100'];

export type ScenarioId = 'a' | 'b' | 'c' | 'd' | 'e' | 'h' | 'j' | 'k' | 'k2' | 'l' | 'm' | 'n';

export const SCENARIO_ARGS: Record<ScenarioId, string[]> = {
  a: ['--producers', '1', '--consumers', '1', '--size', '16', ...CONSUMER_OPTS],
  b: ['--producers', '1', '--consumers', '1', '--size', '1024', ...CONSUMER_OPTS],
  c: ['--producers', '1', '--consumers', '1', '--size', '1024', '--persistent', '--confirm', '256', '--durable-queue', ...CONSUMER_OPTS],
  d: ['--producers', '1', '--fanout-queues', '50', '--size', '16', ...CONSUMER_OPTS],
  e: [
    '--producers',
    '1',
    '--consumers',
    '1',
    '--exchange-type',
    'topic',
    '--bindings',
    '10000',
    '--routing-keys',
    '1000',
    '--size',
    '16',
    ...CONSUMER_OPTS,
  ],
  // Large messages: 1 MiB bodies, prefetch 50 (issue 14's (k)).
  k: ['--producers', '1', '--consumers', '1', '--size', String(1 << 20), '--prefetch', '50', '--multi-ack-every', '10'],
  // Large messages, 64 MiB bodies: a confirm window and prefetch of 4 keep a few in flight, not gigabytes.
  k2: ['--producers', '1', '--consumers', '1', '--size', String(64 << 20), '--confirm', '4', '--prefetch', '4', '--multi-ack-every', '1'],
  h: ['--producers', '1', '--consumers', '1', '--rate', '5000', '--size', '16', ...CONSUMER_OPTS],
  // Latency under load: the same at ten times the rate.
  j: ['--producers', '1', '--consumers', '1', '--rate', '50000', '--size', '16', ...CONSUMER_OPTS],
  // Many queues: producer i feeds queue i, consumer i reads it.
  l: ['--producers', '100', '--consumers', '100', '--queues', '100', '--route-per-producer', '--size', '16', ...CONSUMER_OPTS],
  // Many light connections: each publishes 1 msg/s to its own queue and consumes it; heartbeat 10 s.
  m: ['--producers', '0', '--consumers', '0', '--light-connections', '10000', '--light-rate', '1', '--heartbeat', '10', '--size', '16'],
  // Fanout of persistent messages into 50 durable queues: what reaches storage per message.
  n: [
    '--producers',
    '1',
    '--fanout-queues',
    '50',
    '--size',
    '1024',
    '--persistent',
    '--confirm',
    '256',
    '--durable-queue',
    ...CONSUMER_OPTS,
  ],
};

/**
 * The leveret-perf arguments of the timed scenarios, shared by bench:compare (which runs them
 * against both brokers) and bench:profile (which records where Leveret spends its time in them).
 */
export const CONSUMER_OPTS = ['--prefetch', '1000', '--multi-ack-every', '100'];

export const SCENARIO_ARGS: Record<'a' | 'b' | 'c' | 'd' | 'e' | 'h' | 'k', string[]> = {
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
  h: ['--producers', '1', '--consumers', '1', '--rate', '5000', '--size', '16', ...CONSUMER_OPTS],
};

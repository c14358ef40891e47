import type { Logger } from '../../logger';
import type { Store } from '../../store/store';
import { startLeaderReplication, type LeaderReplication } from './leader-replication';
import { attachTestStream } from './test-stream';

/** LEVERET_TEST_REPLICATION's JSON: a leader with a fixed term and an ISR kept in memory. */
interface TestReplication {
  port: number;
  secret: string;
  term: number;
  minIsr: number;
  isr: string[];
  node?: string;
  cluster?: string;
  maxLagMs?: number;
  maxLagBytes?: number;
  backlogBytes?: number;
}

/**
 * TEST ONLY, loaded by app.ts when LEVERET_TEST_STREAM_TO or LEVERET_TEST_REPLICATION is set
 * (never in production; a single-node broker loads nothing from src/cluster):
 * - LEVERET_TEST_STREAM_TO=<dir>: the store's ops applied in-process to <dir> (test-stream.ts);
 * - LEVERET_TEST_REPLICATION='{"port":P,"secret":"..","term":1,"minIsr":1,"isr":["f1"]}': this
 *   broker leads a replication cluster of fixed term, its ISR kept in memory (the ISR writes
 *   always succeed), isLeader always true: for test/cluster-live.test.ts and its followers.
 * Returns what the broker's stop must await (the followers get the last ops), or null.
 */
export function attachForTests(env: NodeJS.ProcessEnv, dataDir: string, store: Store, log: Logger): (() => Promise<void>) | null {
  const streamTo = env.LEVERET_TEST_STREAM_TO;
  if (streamTo !== undefined && streamTo !== '') attachTestStream(dataDir, streamTo, log);
  const json = env.LEVERET_TEST_REPLICATION;
  if (json === undefined || json === '') return null;
  const o = JSON.parse(json) as TestReplication;
  let isr = o.isr.slice();
  let repl: LeaderReplication | null = null;
  const started = startLeaderReplication({
    scheduler: store.scheduler,
    dataDir,
    port: o.port,
    host: '127.0.0.1',
    secret: o.secret,
    term: o.term,
    cluster: o.cluster ?? 'test',
    node: o.node ?? 'leader',
    minIsr: o.minIsr,
    isr,
    setIsr: (nodes) => {
      isr = nodes.slice();
      return Promise.resolve();
    },
    isLeader: () => true,
    maxLagMs: o.maxLagMs,
    maxLagBytes: o.maxLagBytes,
    backlogBytes: o.backlogBytes,
    log: { info: (obj, msg) => log.info(obj, msg), warn: (obj, msg) => log.warn(obj, msg) },
  }).then(
    (r) => {
      repl = r;
      return r;
    },
    (err: unknown) => {
      log.fatal({ err }, 'test replication: cannot start');
      process.exit(1);
    },
  );
  // The harness reports where the stream is, for the test's figures.
  const timer = setInterval(() => {
    if (repl !== null)
      log.info({ lsn: repl.lsn(), isr, followers: repl.followers(), released: repl.gate.releasedLsn }, 'test replication: status');
  }, 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await (await started).stop(3000);
  };
}

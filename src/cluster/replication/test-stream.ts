import type { Logger } from '../../logger';
import { attachStoreTap } from '../../store/store-tap';
import { OpApplier } from './op-applier';
import { OpTap } from './op-tap';

/**
 * TEST ONLY (test/cluster-stream.test.ts, through LEVERET_TEST_STREAM_TO): the store's ops
 * go, encoded, straight to an applier on a second directory in this same process, so that
 * a test can check the stream end to end (the follower's copy byte-identical, a broker
 * started on it) before the stream has its own transport. Never set in production.
 */
export function attachTestStream(dataDir: string, followerDir: string, log: Logger): void {
  const applier = new OpApplier(followerDir);
  const tap = new OpTap(dataDir, (op) => applier.apply(op));
  attachStoreTap(tap);
  const started = Date.now();
  process.on('exit', () => {
    applier.close();
    log.info(
      {
        streamOps: tap.ops,
        streamBytes: tap.bytes,
        lsn: tap.lsn,
        followerDurableLsn: applier.durableLsn,
        followerSyncs: applier.syncs,
        broken: tap.broken,
        ms: Date.now() - started,
      },
      'test stream: follower copy closed',
    );
  });
}

import type { Logger } from '../../logger';
import { attachStoreTap } from '../../store/store-tap';
import { encodeFrame, FrameType } from './frame';
import { FrameDecoder } from './frame-decoder';
import { OpApplier } from './op-applier';
import { collectOps, OpTap } from './op-tap';

const TEST_TERM = 1;

/**
 * TEST ONLY (test/cluster-stream.test.ts, through LEVERET_TEST_STREAM_TO): the store's ops
 * go, encoded, straight to an applier on a second directory in this same process, so that
 * a test can check the stream end to end (the follower's copy byte-identical, a broker
 * started on it) before the stream has its own transport. Never set in production.
 */
export function attachTestStream(dataDir: string, followerDir: string, log: Logger): void {
  const applier = new OpApplier(followerDir);
  // Through the replication framing (crc, size limit), as the stream's frames will carry them.
  const decoder = new FrameDecoder();
  const tap = new OpTap(
    dataDir,
    collectOps((op) => {
      for (const f of decoder.push(encodeFrame(FrameType.OPS, TEST_TERM, op))) applier.apply(f.payload);
    }),
  );
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

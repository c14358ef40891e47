import type { Logger } from '../logger';
import type { MemberInfo } from './member';
import { ReplicationError } from './replication/errors';
import { FollowerReplication } from './replication/follower-replication';

/** Where a follower finds the leader: the leader's member key (advertiseHost, ports). */
export interface LeaderAddress {
  node: string;
  host: string;
  replicationPort: number;
  amqpPort: number;
  httpPort: number;
  /** the leader's amqps and HTTPS ports; 0 when it has no TLS */
  amqpsPort: number;
  httpsPort: number;
}

export interface FollowerLoopOptions {
  leader: string;
  term: number;
  dataDir: string;
  nodeName: string;
  cluster: string;
  log: Logger;
  /** the live members as this node sees them (the leader's entry gives its address) */
  members: () => MemberInfo[];
  /** the replication secret; null while nobody has made it yet (a first leader does, at once) */
  secret: () => Promise<string | null>;
  /** the leader's address became known (once per loop): where the follower's proxies point */
  onLeaderKnown: (leader: LeaderAddress) => void;
  /** a catch-up finished: the directory is a complete copy again (no mark) */
  onCaughtUp: () => void;
}

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

/**
 * The follower role for one leader term: finds the leader's address in its member key, then
 * catches the data directory up from it and applies the leader's stream of store changes
 * (FollowerReplication), retrying with a growing back-off (the leader may still be starting, or
 * gone: the election then names another and this loop is stopped).
 */
export class FollowerLoop {
  private stopped = false;
  private delay = FIRST_RETRY_MS;
  /** Resolves with null once stop() is called: ends every wait of the loop at once. */
  private readonly stopSignal: Promise<null>;
  private signalStop!: () => void;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly o: FollowerLoopOptions) {
    this.stopSignal = new Promise((resolve) => (this.signalStop = () => resolve(null)));
  }

  get leader(): string {
    return this.o.leader;
  }

  get term(): number {
    return this.o.term;
  }

  start(): void {
    this.done = this.run().catch((err: unknown) => this.o.log.error({ err, leader: this.o.leader }, 'cluster: follower loop failed'));
  }

  /** Ends a running catch-up at once and waits until the directory is released. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop();
    await this.done;
  }

  private async run(): Promise<void> {
    const { log, leader, term } = this.o;
    let known = false;
    let said = '';
    const once = (msg: string, fields: object) => {
      if (said === msg) return;
      said = msg;
      log.info({ leader, term, ...fields }, msg);
    };
    while (!this.stopped) {
      const member = this.o.members().find((m) => m.name === leader);
      if (!member || member.advertiseHost === '' || member.replicationPort === 0) {
        once("cluster: waiting for the leader's member key", {});
        await this.sleep(200);
        continue;
      }
      if (!known) {
        known = true;
        this.o.onLeaderKnown({
          node: leader,
          host: member.advertiseHost,
          replicationPort: member.replicationPort,
          amqpPort: member.amqpPort,
          httpPort: member.httpPort,
          amqpsPort: member.amqpsPort,
          httpsPort: member.httpsPort,
        });
      }
      let secret: string | null;
      try {
        secret = await this.o.secret();
      } catch (err) {
        log.warn({ leader, term, reason: (err as Error).message }, 'cluster: cannot read the replication secret from etcd; retrying');
        await this.backOff();
        continue;
      }
      if (secret === null) {
        once('cluster: waiting for the leader to create the replication secret', {});
        await this.sleep(200);
        continue;
      }
      if (this.stopped) return;
      const follower = new FollowerReplication({
        host: member.advertiseHost,
        port: member.replicationPort,
        dataDir: this.o.dataDir,
        secret,
        node: this.o.nodeName,
        cluster: this.o.cluster,
        term,
        log,
      });
      const t0 = Date.now();
      follower.on('complete', (e: { lsn: number }) => {
        log.info(
          { leader, term, ms: Date.now() - t0, lsn: e.lsn, bytesFetched: follower.bytesFetched },
          'cluster: data directory in step with the leader',
        );
        this.o.onCaughtUp();
      });
      // Connection failures are retried inside; what ends it is not retryable (a wrong secret,
      // a deposed leader, our own disk): start over after a back-off, from the member key.
      const failed = new Promise<ReplicationError>((resolve) => follower.once('failed', resolve));
      try {
        follower.start();
      } catch (err) {
        log.warn({ leader, term, reason: (err as Error).message, retryInMs: this.delay }, 'cluster: cannot follow the leader; retrying');
        await this.backOff();
        continue;
      }
      const e = await Promise.race([failed, this.stopSignal]);
      await follower.stop();
      if (this.stopped || e === null) return;
      log.warn({ leader, term, code: e.code, reason: e.message, retryInMs: this.delay }, 'cluster: following the leader failed; retrying');
      await this.backOff();
    }
  }

  /** Waits the current back-off (or until stop()), then doubles it up to MAX_RETRY_MS. */
  private async backOff(): Promise<void> {
    await this.sleep(this.delay);
    this.delay = Math.min(this.delay * 2, MAX_RETRY_MS);
  }

  /** Waits `ms`, or until stop(). */
  private async sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), this.stopSignal]);
    clearTimeout(timer);
  }
}

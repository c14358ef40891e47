import { EventEmitter } from 'node:events';
import { EtcdLeaseInvalidError, type Etcd3, type IDuplexStream, type ILeaseKeepAliveRequest, type ILeaseKeepAliveResponse } from 'etcd3';
import { monotonicNow } from './clock';
import { Fence } from './fencing';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/**
 * One etcd lease held by this node: the member key and, when leading, the leader key hang on it.
 *
 * We run the keep-alive stream ourselves instead of using etcd3's Lease because the fence needs
 * the send time of each answered keep-alive; etcd answers a stream's requests in order, so a FIFO
 * of send times pairs each answer with its request.
 *
 * Emits 'renewed' (validUntil) after each answered keep-alive and 'lost' (reason) once, when
 * etcd says the lease is gone or the local deadline passes first.
 */
export class NodeLease extends EventEmitter {
  readonly fence: Fence;
  private stream: KeepAliveStream | undefined;
  private opening = false;
  private sentAts: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  private constructor(
    private readonly client: Etcd3,
    /** etcd's lease ID (int64 as a decimal string). */
    readonly id: string,
    readonly ttlSeconds: number,
    marginMs: number,
  ) {
    super();
    this.fence = new Fence(marginMs, () => this.lose('lease deadline passed without an answered keep-alive'));
  }

  static async grant(client: Etcd3, ttlSeconds: number, marginMs: number): Promise<NodeLease> {
    const sentAt = monotonicNow();
    const res = await client.leaseClient.leaseGrant({ TTL: ttlSeconds });
    // etcd may raise a TTL below its minimum (about 1.5 x the election timeout); trust what it granted.
    const ttl = Number(res.TTL);
    const lease = new NodeLease(client, res.ID, ttl, marginMs);
    lease.fence.renew(sentAt, ttl * 1000);
    lease.start();
    return lease;
  }

  get lost(): boolean {
    return this.done;
  }

  /**
   * Gives the lease back so its keys go at once. Best effort: false if etcd could not be asked (the
   * TTL ends it anyway), true if it is revoked or was already gone.
   */
  async revoke(timeoutMs = 1000): Promise<boolean> {
    this.close();
    try {
      await this.client.leaseClient.leaseRevoke({ ID: this.id }, { deadline: Date.now() + timeoutMs });
      return true;
    } catch (err) {
      return err instanceof EtcdLeaseInvalidError;
    }
  }

  /** Stops keep-alives without revoking: the lease runs out after its TTL. */
  close(): void {
    if (this.done) return;
    this.done = true;
    this.shutdown();
  }

  private start(): void {
    // The interval the Go client uses; a third of the TTL leaves two retries before expiry.
    const every = Math.max(100, (this.ttlSeconds * 1000) / 3);
    this.timer = setInterval(() => this.tick(), every);
    this.tick();
  }

  private tick(): void {
    if (this.done) return;
    const oldest = this.sentAts[0];
    if (oldest !== undefined && monotonicNow() - oldest > this.ttlSeconds * 1000) {
      // Requests go unanswered (a half-open connection): start over on a fresh stream.
      this.dropStream();
    }
    if (this.stream) {
      this.send(this.stream);
      return;
    }
    if (this.opening) return;
    this.opening = true;
    this.client.leaseClient.leaseKeepAlive().then(
      (stream) => {
        this.opening = false;
        if (this.done) {
          stream.end();
          return;
        }
        this.attach(stream);
        this.send(stream);
      },
      () => {
        this.opening = false; // the next tick tries again; the fence keeps time meanwhile
      },
    );
  }

  private attach(stream: KeepAliveStream): void {
    this.stream = stream;
    const gone = () => {
      if (this.stream === stream) this.dropStream();
    };
    stream.on('data', (res: ILeaseKeepAliveResponse) => {
      if (this.stream !== stream) return;
      const sentAt = this.sentAts.shift();
      if (res.TTL === '0' || Number(res.TTL) <= 0) {
        this.lose('etcd reports the lease expired');
        return;
      }
      if (sentAt === undefined) return;
      this.fence.renew(sentAt, Number(res.TTL) * 1000);
      if (!this.done) this.emit('renewed', this.fence.validUntil);
    });
    stream.on('error', gone);
    stream.on('end', gone);
  }

  private send(stream: KeepAliveStream): void {
    this.sentAts.push(monotonicNow());
    stream.write({ ID: this.id });
  }

  private dropStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    this.sentAts = [];
    // Its listeners stay but check `this.stream`, so late answers are ignored.
    if (stream) stream.end();
  }

  private lose(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.shutdown();
    this.emit('lost', reason);
  }

  private shutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.fence.close();
    this.dropStream();
  }
}

import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { ClusterKeys } from './keys';
import { parseIsr, type IsrRecord } from './isr';
import { parseLeader, type LeaderRecord } from './leader';
import { parseMember, type MemberInfo } from './member';

/**
 * A local copy of the cluster's keys in etcd (members, ISR, leader), kept current by one watch on
 * the cluster prefix. Every key remembers the revision of its last change, so a stale event (or a
 * transaction result we applied before the watch caught up) never overwrites newer knowledge.
 *
 * Emits 'members' (MemberInfo[]), 'isr' (IsrRecord | null) and 'leader' (LeaderRecord | null).
 */
export class ClusterView extends EventEmitter {
  leader: LeaderRecord | null = null;
  isr: IsrRecord | null = null;
  private readonly memberMap = new Map<string, MemberInfo>();
  private readonly revisions = new Map<string, number>();
  private latest = 0;
  private watcher: Watcher | undefined;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: ClusterKeys,
  ) {
    super();
  }

  members(): MemberInfo[] {
    return [...this.memberMap.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async start(): Promise<void> {
    await this.resync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.cancel().catch(() => undefined);
  }

  /** Applies a key read in a transaction (fresher than the watch may be). */
  applyPut(kv: IKeyValue): void {
    const key = kv.key.toString();
    const rev = Number(kv.mod_revision);
    if (!this.newer(key, rev)) return;
    const value = kv.value.toString();
    if (key === this.keys.leader) {
      this.leader = parseLeader(kv);
      this.emit('leader', this.leader);
    } else if (key === this.keys.isr) {
      this.isr = { nodes: parseIsr(value), modRevision: rev };
      this.emit('isr', this.isr);
    } else if (key.startsWith(this.keys.membersPrefix)) {
      const name = key.slice(this.keys.membersPrefix.length);
      this.memberMap.set(name, parseMember(name, value));
      this.emit('members', this.members());
    }
  }

  applyDelete(key: string, revision: number): void {
    if (!this.newer(key, revision)) return;
    if (key === this.keys.leader) {
      if (this.leader === null) return;
      this.leader = null;
      this.emit('leader', null);
    } else if (key === this.keys.isr) {
      if (this.isr === null) return;
      this.isr = null;
      this.emit('isr', null);
    } else if (key.startsWith(this.keys.membersPrefix)) {
      if (this.memberMap.delete(key.slice(this.keys.membersPrefix.length))) this.emit('members', this.members());
    }
  }

  private newer(key: string, revision: number): boolean {
    if (revision <= (this.revisions.get(key) ?? 0)) return false;
    this.revisions.set(key, revision);
    if (revision > this.latest) this.latest = revision;
    return true;
  }

  private async restart(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.cancel().catch(() => undefined);
    for (;;) {
      if (this.stopped) return;
      try {
        await this.resync();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Full read, then a watch from just after it; keys absent now were deleted while we were not looking. */
  private async resync(): Promise<void> {
    const snap = await this.client.getAll().prefix(this.keys.prefix).exec();
    const rev = Number(snap.header.revision);
    // An etcd whose revision went backwards lost its data (a new cluster on an empty directory):
    // our revision stamps mean nothing there any more.
    if (rev < this.latest) this.revisions.clear();
    this.latest = rev;
    const present = new Set(snap.kvs.map((kv) => kv.key.toString()));
    for (const kv of snap.kvs) this.applyPut(kv);
    const known = [this.keys.leader, this.keys.isr, ...[...this.memberMap.keys()].map((n) => this.keys.member(n))];
    for (const key of known) if (!present.has(key)) this.applyDelete(key, rev);
    const watcher = await this.client
      .watch()
      .prefix(this.keys.prefix)
      .startRevision(String(rev + 1))
      .create();
    if (this.stopped) {
      await watcher.cancel();
      return;
    }
    this.watcher = watcher;
    watcher.on('put', (kv) => this.applyPut(kv));
    watcher.on('delete', (kv) => this.applyDelete(kv.key.toString(), Number(kv.mod_revision)));
    watcher.on('error', () => void this.restart());
  }
}

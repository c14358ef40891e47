import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { ReplicationError } from './errors';
import { isSyncedLazily, safeRelativePath } from './node-local';
import { decodeOp, OpKind, type StoreOp } from './store-ops';

/** Descriptors kept open at most; one written since the last sync is synced before it is closed. */
const MAX_OPEN = 256;
/** How often a sync round also takes the files synced lazily (isSyncedLazily). */
const LAZY_SYNC_MS = 1000;

/**
 * The follower's end of the live stream: applies the leader's ops, in LSN order, to its
 * own data directory with the same system calls (positional writes, so applying an op
 * twice changes nothing), and makes them durable at each SYNCED op: one fdatasync per
 * file written since the last one, one fsync per directory whose entries changed (group
 * commit, as on the leader). `durableLsn` is the highest LSN on this disk.
 */
export class OpApplier {
  /** the last LSN applied (in the page cache) */
  appliedLsn = 0;
  /** the last LSN made durable here */
  durableLsn = 0;
  /** what the leader's last synced round covered, as it told us */
  leaderDurableLsn = 0;
  ops = 0;
  bytes = 0;
  syncs = 0;
  /**
   * While set, SYNCED ops are noted but not acted on: a follower catching up on a run of ops
   * syncs once at the end of the run (the last SYNCED op covers everything before it), not
   * once per leader round, which would make it as slow to catch up as the rounds were long.
   */
  deferSync = false;
  /** the LSN of the last SYNCED op applied, deferred or not */
  syncedSeen = 0;
  /** a ROUND op was applied since the follower last looked (takeRound) */
  private roundStarted = false;
  /** the files an asynchronous sync round is making durable (closes of them wait for it) */
  private inFlight: Set<number> | null = null;
  private readonly toClose: number[] = [];
  private syncAgain = false;
  private readonly fds = new Map<string, number>();
  private readonly dirtyFiles = new Set<number>();
  /** files written since their last sync that no round syncs (isSyncedLazily) */
  private readonly lazyFiles = new Set<number>();
  private lastLazySync = 0;
  private readonly dirtyDirs = new Set<string>();

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  apply(buf: Buffer): void {
    const op = decodeOp(buf);
    if (op.lsn !== this.appliedLsn + 1 && this.appliedLsn !== 0) {
      throw new Error(`store op ${op.lsn} out of order: expected ${this.appliedLsn + 1}`);
    }
    this.applyOp(op);
    this.appliedLsn = op.lsn;
    this.ops++;
    this.bytes += buf.length;
  }

  private applyOp(op: StoreOp): void {
    if (op.kind === OpKind.SYNCED) return this.sync(op);
    if (op.kind === OpKind.ROUND) {
      this.roundStarted = true;
      return;
    }
    const rel = safeRelativePath(op.path);
    if (rel === null) throw new Error(`store op ${op.lsn} names a path a follower must not touch: ${JSON.stringify(op.path)}`);
    const path = join(this.dir, rel);
    switch (op.kind) {
      case OpKind.OPEN: {
        this.closeFile(rel);
        const fd = openMaking(path, op.n ? 'w+' : fs.constants.O_RDWR | fs.constants.O_CREAT);
        this.keep(rel, fd);
        this.dirtyDirs.add(dirname(path));
        return;
      }
      case OpKind.WRITE: {
        const fd = this.fdOf(rel, path);
        writeAt(fd, op.data!, op.n);
        // As on the leader, whose store leaves ack records out of its fdatasync rounds (an
        // ack lost in a crash brings a message back, never loses one): one fdatasync fewer
        // per round. A round syncs them once a second (LAZY_SYNC_MS), to bound how far this
        // copy's acks can be behind its messages after a crash of the machine.
        if (isSyncedLazily(rel)) this.lazyFiles.add(fd);
        else this.dirtyFiles.add(fd);
        return;
      }
      case OpKind.TRUNCATE:
        fs.ftruncateSync(this.fdOf(rel, path), op.n);
        this.dirtyFiles.add(this.fdOf(rel, path));
        return;
      case OpKind.REMOVE: {
        // Unlinked while still open, then closed in the thread pool: the last close of a removed
        // segment frees its blocks, milliseconds the stream would otherwise wait through. Its
        // unsynced writes need no sync: the removal is durable (the folder's sync) before the
        // next ack, and a follower resumed before that replays the writes and the removal.
        const open: number[] = [];
        for (const [r, fd] of this.fds)
          if (r === rel || r.startsWith(rel + '/')) {
            this.fds.delete(r);
            this.dirtyFiles.delete(fd);
            this.lazyFiles.delete(fd);
            open.push(fd);
          }
        fs.rmSync(path, { recursive: true, force: true });
        for (const fd of open) this.closeLater(fd);
        this.dirtyDirs.add(dirname(path));
        return;
      }
      case OpKind.MKDIR:
        fs.mkdirSync(path, { recursive: true });
        this.dirtyDirs.add(dirname(path));
        return;
      case OpKind.REPLACE: {
        this.closeFile(rel);
        const tmp = path + '.tmp';
        const fd = openMaking(tmp, 'w');
        try {
          writeAt(fd, op.data!, 0);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(tmp, path);
        this.dirtyDirs.add(dirname(path));
        return;
      }
      case OpKind.REPLACE_PART:
        return this.replacePart(op, rel, path);
      case OpKind.REPLACE_END:
        return this.replaceEnd(op, rel, path);
    }
  }

  /**
   * A chunk of a new content written aside, in `<file>.tmp` (node-local: never copied, removed
   * by a catch-up, never read by a broker), kept open and synced with the other files, so a
   * stream resumed between two parts finds the earlier ones on disk. Position 0 starts it
   * anew; a later part needs every byte before it there already, else the file would be
   * renamed with a hole in it.
   */
  private replacePart(op: StoreOp, rel: string, path: string): void {
    const tmpRel = rel + '.tmp';
    let fd = this.fds.get(tmpRel);
    if (op.n === 0) {
      this.closeFile(tmpRel);
      fd = openMaking(path + '.tmp', 'w+');
      this.keep(tmpRel, fd);
      this.dirtyDirs.add(dirname(path));
    } else if (fd === undefined) {
      fd = this.reopenAside(op, path, tmpRel, op.n);
    }
    writeAt(fd, op.data!, op.n);
    this.dirtyFiles.add(fd);
  }

  /** The new content is whole aside: synced, then renamed over the file (never half there). */
  private replaceEnd(op: StoreOp, rel: string, path: string): void {
    const tmpRel = rel + '.tmp';
    const fd = this.fds.get(tmpRel) ?? this.reopenAside(op, path, tmpRel, op.n);
    const size = fs.fstatSync(fd).size;
    if (size !== op.n)
      throw new ReplicationError('lagging', `store op ${op.lsn}: ${rel}'s new content is ${size} bytes aside, not ${op.n}: catch up again`);
    fs.fsyncSync(fd);
    this.dirtyFiles.delete(fd);
    this.closeFile(tmpRel);
    this.closeFile(rel);
    fs.renameSync(path + '.tmp', path);
    this.dirtyDirs.add(dirname(path));
  }

  /** Reopens a content being written aside (a stream resumed past its first parts); it must hold `need` bytes. */
  private reopenAside(op: StoreOp, path: string, tmpRel: string, need: number): number {
    let fd: number;
    try {
      fd = fs.openSync(path + '.tmp', 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new ReplicationError('lagging', `store op ${op.lsn} continues ${tmpRel}, which is not there: catch up again`);
    }
    const size = fs.fstatSync(fd).size;
    if (size < need) {
      fs.closeSync(fd);
      throw new ReplicationError('lagging', `store op ${op.lsn} continues ${tmpRel} at ${need}, which holds ${size} bytes: catch up again`);
    }
    this.keep(tmpRel, fd);
    return fd;
  }

  /** Makes everything applied durable; LSNs up to this op are then on our disk. */
  private sync(op: StoreOp): void {
    this.syncedSeen = op.lsn;
    this.leaderDurableLsn = op.upTo;
    if (this.deferSync) return;
    this.flush();
    this.durableLsn = op.lsn;
  }

  /** Whether the leader started a sync round since the last call: ours should start now too. */
  takeRound(): boolean {
    const r = this.roundStarted;
    this.roundStarted = false;
    return r;
  }

  /**
   * Group commit on the follower: fdatasyncs every file written since the last sync, in
   * parallel in the thread pool, while later ops go on being applied (what was written before
   * an fdatasync started is covered by it). `done(lsn)`: every op up to lsn is durable here.
   * One sync at a time; one asked for meanwhile starts when it ends. Folder entries change
   * rarely (a segment made or removed): they are synced at once, before the files' round.
   */
  syncAsync(done: (lsn: number, err: Error | null) => void): void {
    if (this.inFlight !== null) {
      this.syncAgain = true;
      return;
    }
    if (this.appliedLsn <= this.durableLsn) return;
    const lsn = this.appliedLsn;
    const fds = [...this.dirtyFiles];
    this.dirtyFiles.clear();
    const now = Date.now();
    if (now - this.lastLazySync >= LAZY_SYNC_MS) {
      this.lastLazySync = now;
      for (const fd of this.lazyFiles) fds.push(fd);
      this.lazyFiles.clear();
    }
    try {
      this.syncDirs();
    } catch (err) {
      done(this.durableLsn, err as Error);
      return;
    }
    this.inFlight = new Set(fds);
    this.syncs += fds.length;
    let left = fds.length;
    let failure: Error | null = null;
    const finish = (): void => {
      this.inFlight = null;
      for (const fd of this.toClose.splice(0)) fs.close(fd, ignore);
      if (failure === null && lsn > this.durableLsn) this.durableLsn = lsn;
      done(this.durableLsn, failure);
      if (this.syncAgain && failure === null) {
        this.syncAgain = false;
        this.syncAsync(done);
      }
    };
    if (left === 0) return finish();
    for (const fd of fds)
      fs.fdatasync(fd, (err) => {
        if (err) failure ??= err;
        if (--left === 0) finish();
      });
  }

  /** Makes everything written so far durable, here and now, the lazily synced files too. */
  private flush(): void {
    for (const files of [this.lazyFiles, this.dirtyFiles]) {
      for (const fd of files) fs.fdatasyncSync(fd);
      this.syncs += files.size;
      files.clear();
    }
    this.syncDirs();
  }

  private syncDirs(): void {
    for (const d of this.dirtyDirs) {
      let fd: number;
      try {
        fd = fs.openSync(d, 'r');
      } catch {
        continue; // removed since: its parent's sync covers that
      }
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.dirtyDirs.clear();
  }

  /** Syncs what is pending and closes every file (the stream ended). */
  close(): void {
    // An asynchronous round still running covers some of it; these make sure of all of it.
    if (this.inFlight !== null) for (const fd of this.inFlight) if (!this.toClose.includes(fd)) fs.fdatasyncSync(fd);
    this.flush();
    this.durableLsn = this.appliedLsn;
    for (const r of [...this.fds.keys()]) this.closeFile(r);
  }

  /** Closes in the thread pool, once no sync round under way still uses the descriptor. */
  private closeLater(fd: number): void {
    if (this.inFlight?.has(fd) === true) this.toClose.push(fd);
    else fs.close(fd, ignore);
  }

  private closeFile(rel: string): void {
    const fd = this.fds.get(rel);
    if (fd === undefined) return;
    this.fds.delete(rel);
    if (this.dirtyFiles.delete(fd)) fs.fdatasyncSync(fd);
    this.lazyFiles.delete(fd);
    // An asynchronous fdatasync may still use it: closed once that round ends.
    if (this.inFlight?.has(fd) === true) this.toClose.push(fd);
    else fs.closeSync(fd);
  }

  private fdOf(rel: string, path: string): number {
    const fd = this.fds.get(rel);
    if (fd !== undefined) return fd;
    const opened = openMaking(path, fs.constants.O_RDWR | fs.constants.O_CREAT);
    this.keep(rel, opened);
    return opened;
  }

  private keep(rel: string, fd: number): void {
    if (this.fds.size >= MAX_OPEN) this.closeFile(this.fds.keys().next().value as string);
    this.fds.set(rel, fd);
  }
}

/**
 * Opens (creating) a file, making its folder first if it is missing: after a catch-up from a
 * live leader, the stream replays ops on files whose folder the copy no longer has (deleted
 * on the leader after the snapshot point); the stream's own REMOVE takes them away again.
 */
/** Writes all of `data` at `position` (a write may take less than it is given). */
function writeAt(fd: number, data: Buffer, position: number): void {
  for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off, position + off);
}

function openMaking(path: string, flags: string | number): number {
  try {
    return fs.openSync(path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(dirname(path), { recursive: true });
    return fs.openSync(path, flags);
  }
}

/** A close in the thread pool of a descriptor we own has no failure anyone could act on. */
function ignore(): void {}

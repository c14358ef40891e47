import type { Socket } from 'node:net';
import { NextTurn } from './next-turn';

/**
 * Bytes read from one socket per event-loop turn before it is paused until the next turn.
 * libuv reads a busy socket many times per turn; without a budget one fast publisher keeps
 * the loop to itself and consumers' acks wait, so deliveries crawl while queues grow.
 */
const READ_BUDGET = 64 * 1024;
/**
 * Sockets over their budget resumed per turn. Resuming every one of them each turn lets a
 * turn grow with the number of busy publishers (100 of them: 6.4 MB, half a second), and
 * every other connection (consumers' acks above all) is read only once per such turn. In
 * turns, 16 at a time, the turn stays about 1 MB however many there are, and each gets its
 * share in order.
 */
const RESUMED_PER_TURN = 16;
/** Longest a publisher is held back by flow control at a time. */
const FLOW_MAX_PAUSE_MS = 1000;

/** Gates paused by the read budget, resumed in turns, RESUMED_PER_TURN per event-loop turn. */
const budgetRenewals = new NextTurn<ReadGate>((g) => g.budgetRenewed(), RESUMED_PER_TURN);

/**
 * When a connection's socket is read from. Four things hold reading back: the per-turn
 * read budget, an alarm that blocks publishers (memory, disk), flow control (a queue it
 * publishes to is behind its consumers), and output the client does not read. Reading
 * resumes when none holds.
 */
export class ReadGate {
  private turnBytes = 0;
  /** The budgetRenewals batch turnBytes counts from (a new turn whenever some gate waits). */
  private turn = 0;
  /** Paused by the read budget, waiting in budgetRenewals for its turn. */
  private renewing = false;
  /** Paused by an alarm: not read from until the alarm is over. */
  blocked = false;
  private flowPaused = false;
  /** Paused while our output to the client is backed up (it is not reading). */
  outputHeld = false;
  private flowTimer: NodeJS.Timeout | null = null;
  /** made at the first flow pause: most connections never publish fast enough to need it */
  private flowResumeBound: (() => void) | null = null;

  constructor(private readonly socket: Socket) {}

  /** Held back by flow control just now. */
  get flowing(): boolean {
    return this.flowPaused;
  }

  /** Counts bytes just read against this turn's budget. */
  read(bytes: number): void {
    if (this.turn !== budgetRenewals.batches) {
      this.turn = budgetRenewals.batches;
      this.turnBytes = 0;
    }
    this.turnBytes += bytes;
    if (this.turnBytes >= READ_BUDGET && !this.renewing) {
      this.renewing = true;
      this.socket.pause();
      budgetRenewals.add(this);
    }
  }

  /** Its turn has come: a new read budget. False when something else still holds reading back. */
  budgetRenewed(): boolean {
    this.renewing = false;
    return this.resume();
  }

  /** Stops reading until the alarm is over. */
  block(): void {
    this.blocked = true;
    this.socket.pause();
  }

  unblock(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.resume();
  }

  /** Flow control: stops reading until flowResume (or a second has passed). */
  flowPause(): boolean {
    if (this.flowPaused) return false;
    this.flowPaused = true;
    this.socket.pause();
    this.flowTimer = setTimeout((this.flowResumeBound ??= () => this.flowResume()), FLOW_MAX_PAUSE_MS);
    return true;
  }

  flowResume(): void {
    if (!this.flowPaused) return;
    this.flowPaused = false;
    if (this.flowTimer !== null) clearTimeout(this.flowTimer);
    this.flowTimer = null;
    this.takeTurn();
  }

  /** Our output is backed up: read no more (and so answer no more) until it drains. */
  holdForOutput(): void {
    this.outputHeld = true;
    this.socket.pause();
  }

  outputDrained(): void {
    if (!this.outputHeld) return;
    this.outputHeld = false;
    this.resume();
  }

  /** The connection is done: no timer of ours may outlive it. */
  close(): void {
    if (this.flowTimer !== null) clearTimeout(this.flowTimer);
    this.flowTimer = null;
  }

  /**
   * Resumes reading at its turn among the sockets waiting for one: a queue that drains
   * releases its publishers all at once, and those are read in turns like any others
   * rather than ahead of them. With none waiting, now.
   */
  private takeTurn(): void {
    if (budgetRenewals.waiting === 0) {
      this.resume();
      return;
    }
    if (this.renewing || this.socket.destroyed || this.blocked || this.outputHeld) return;
    this.renewing = true;
    budgetRenewals.add(this);
  }

  private resume(): boolean {
    this.turnBytes = 0;
    if (this.socket.destroyed || this.blocked || this.flowPaused || this.outputHeld || this.renewing) return false;
    this.socket.resume();
    return true;
  }
}

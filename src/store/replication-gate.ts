/**
 * Holds confirms back until followers have the writes too (issue 15's cluster mode). Set on
 * the SyncScheduler, it is handed each epoch whose fdatasync round finished on this disk,
 * instead of the scheduler waking the confirms; it calls the scheduler's release(epoch) once
 * the followers it waits for have made that round durable (and this node still leads).
 * Without a gate (every single-node broker) nothing changes. Defined here so that the store
 * never depends on the cluster code that implements it.
 */
export interface ReplicationGate {
  /** Every write of `epoch` is on this node's disk (the store tap heard `synced(epoch)` just before). */
  localSynced(epoch: number): void;
  /**
   * Whether confirms released earlier may still go out: false once this node no longer leads.
   * A release and the write of its basic.acks are a turn apart; a leader paused in between
   * (SIGSTOP, a long stall) past its lease must not send them when it resumes, after another
   * node has been elected.
   */
  mayConfirm(): boolean;
}

/** The part of a pino logger replication uses, so that tests and fixtures can pass their own. */
export interface ReplicationLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const silentLog: ReplicationLog = { info() {}, warn() {} };

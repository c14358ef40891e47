/** The part of a pino logger the proxies use, so that tests and other callers can pass their own. */
export interface ProxyLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export const silentProxyLog: ProxyLog = { info() {}, warn() {}, debug() {} };

/** Where the proxies forward to: the leader's address and its client ports. */
export interface ProxyTarget {
  host: string;
  amqpPort: number;
  httpPort: number;
  /** the leader's amqps port, when it has one and this node forwards one */
  amqpsPort?: number;
  /** the leader's HTTPS management port, likewise */
  httpsPort?: number;
  /** the leader's node name, for messages and logs; the address stands in for it when absent */
  node?: string;
}

export const targetName = (t: ProxyTarget, port: number): string => `${t.node ?? 'leader'} at ${t.host}:${port}`;

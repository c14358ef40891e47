/**
 * What the management API shows of a cluster (issue 15), handed over by the cluster runtime
 * when this node leads one: the members, their roles, who is in sync and how far behind each
 * follower is. A single-node broker has none (null), and shows itself only.
 */
export interface ClusterMemberStatus {
  name: string;
  role: 'leader' | 'follower';
  /** registered in etcd now (its lease is alive) */
  running: boolean;
  /** in the in-sync replica set: may become leader, confirms wait for it */
  inSync: boolean;
  /** a follower streaming from this leader now */
  streaming: boolean;
  /** the last LSN the follower made durable (the leader: its own last) */
  ackedLsn: number;
  /** bytes of ops the follower lacks */
  lagBytes: number;
  /** ms since the follower's last ack */
  silentMs: number;
  advertiseHost: string;
  amqpPort: number;
  httpPort: number;
  replicationPort: number;
  /** 0: the member serves no TLS */
  amqpsPort: number;
  httpsPort: number;
}

export interface ClusterStatus {
  cluster: string;
  /** this leadership's term */
  term: number;
  leader: string;
  minIsr: number;
  isr: string[];
  /** the leader's last LSN */
  lsn: number;
  members: ClusterMemberStatus[];
}

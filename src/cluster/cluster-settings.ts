import { hostname } from 'node:os';
import type { Config } from '../config';
import { ClusterError } from './errors';
import { checkName } from './keys';

/** The cluster flags of one node, with their defaults resolved. */
export interface ClusterSettings {
  etcd: string[];
  clusterName: string;
  nodeName: string;
  advertiseHost: string;
  replicationPort: number;
  minIsr: number;
  /** ms a follower may go without acking before it leaves the ISR */
  maxLagMs: number;
  leaseTtlSeconds: number;
  /** `--cluster-secret`; null: use (or create) the cluster's `secret` key in etcd */
  secret: string | null;
}

const shortHostname = (): string => hostname().split('.')[0];

/**
 * The node name in cluster mode: `--node-name`, else the short hostname. The single-node default
 * (leveret@host) is not used: '@' cannot be part of an etcd key segment under our rule, and
 * nodes must be told apart by a name an operator recognises.
 */
export function clusterNodeName(config: Pick<Config, 'nodeName'>): string {
  if (config.nodeName !== '') {
    checkName('node name', config.nodeName);
    return config.nodeName;
  }
  const host = shortHostname();
  try {
    checkName('node name', host);
  } catch {
    throw new ClusterError(
      'bad-option',
      `the hostname "${host}" is not a valid node name (1-63 letters, digits, '.', '_' or '-'): give --node-name`,
    );
  }
  return host;
}

/** Where the other nodes reach this one: `--advertise-host`, else `--host` unless it is a wildcard. */
export function advertiseHostOf(config: Pick<Config, 'advertiseHost' | 'host'>): string {
  if (config.advertiseHost !== '') return config.advertiseHost;
  const wildcard = config.host === '0.0.0.0' || config.host === '::' || config.host === '[::]';
  return wildcard ? hostname() : config.host;
}

export function clusterSettings(config: Config): ClusterSettings {
  return {
    etcd: config.clusterEtcd,
    clusterName: config.clusterName,
    nodeName: clusterNodeName(config),
    advertiseHost: advertiseHostOf(config),
    replicationPort: config.replicationPort,
    minIsr: config.minIsr,
    maxLagMs: config.replicationMaxLag * 1000,
    leaseTtlSeconds: config.clusterLeaseTtl,
    secret: config.clusterSecret === '' ? null : config.clusterSecret,
  };
}

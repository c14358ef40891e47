/** Why the cluster layer refused or failed; the CLI maps these to exit code 2 with the message as is. */
export type ClusterErrorCode = 'bad-option' | 'bad-endpoint' | 'etcd-unreachable' | 'name-in-use' | 'not-leader' | 'stopped';

export class ClusterError extends Error {
  constructor(
    readonly code: ClusterErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ClusterError';
  }
}

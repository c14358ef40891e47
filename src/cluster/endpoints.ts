import { ClusterError } from './errors';

/**
 * Parses `--cluster-etcd` (a comma-separated list, or an array of entries) into the `host:port`
 * form the etcd3 client dials. Only plain http is accepted: the client would need certificates for
 * https, and saying so now beats a TLS handshake error later.
 */
export function parseEtcdEndpoints(spec: string | readonly string[]): string[] {
  const entries = (typeof spec === 'string' ? spec.split(',') : spec).map((e) => e.trim());
  if (entries.length === 0 || entries.every((e) => e === '')) {
    throw new ClusterError('bad-endpoint', 'no etcd endpoint given: expected http://host:port[,http://host:port...]');
  }
  return entries.map((entry) => {
    if (entry === '') throw new ClusterError('bad-endpoint', `empty etcd endpoint in "${entries.join(',')}"`);
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new ClusterError('bad-endpoint', `invalid etcd endpoint "${entry}": expected http://host:port`);
    }
    if (url.protocol === 'https:') {
      throw new ClusterError(
        'bad-endpoint',
        `etcd endpoint "${entry}": TLS to etcd is not supported yet; use http:// on a trusted network`,
      );
    }
    if (url.protocol !== 'http:' || url.hostname === '') {
      throw new ClusterError('bad-endpoint', `invalid etcd endpoint "${entry}": expected http://host:port`);
    }
    if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
      throw new ClusterError(
        'bad-endpoint',
        `invalid etcd endpoint "${entry}": only http://host:port is accepted (no path, query or credentials)`,
      );
    }
    return `${url.hostname}:${url.port || '2379'}`;
  });
}

import type { Server } from 'node:net';

/**
 * Binds a server (plain, TLS or HTTP: all are net.Server) to host:port and resolves once it
 * listens; a bind failure (EADDRINUSE) rejects instead of becoming an 'error' event. The
 * caller adds its own 'error' listener for what comes after.
 */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

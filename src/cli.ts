#!/usr/bin/env node
// First: V8's young generation is held small before the other modules load.
import './hold-young-generation';
import { writeSync } from 'node:fs';
import { ConfigError, HelpRequested, VersionRequested, loadConfig, redactConfig, type Config } from './config';
import { createLogOutput, type Logger, type LogOutput } from './logger';
import { Server } from './app';
import { loadTls, type TlsMaterial } from './server/tls';
import { ctlSummary, isCtlCommand, runCtl } from './ctl';

const EXIT_START_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_SOFTWARE = 70; // sysexits EX_SOFTWARE: an internal error, not the operator's

/** Written synchronously so the line survives an immediate process.exit. */
function complain(message: string): void {
  writeSync(2, `leveret: ${message}\n`);
}

async function main(): Promise<void> {
  // `leveret status`, `leveret list queues`...: operator commands, clients of the management API.
  // `leveret serve` and bare `leveret [flags]` start the broker.
  const argv = process.argv.slice(2);
  if (isCtlCommand(argv[0])) {
    process.exitCode = await runCtl(argv, process.env);
    return;
  }
  if (argv[0] === 'serve') argv.shift();
  let config: Config;
  let tls: TlsMaterial | null;
  try {
    config = loadConfig(argv, process.env);
    // An unreadable certificate or a wrong passphrase is a bad configuration, like a bad flag.
    tls = loadTls(config);
  } catch (err) {
    if (err instanceof HelpRequested || err instanceof VersionRequested) {
      process.stdout.write(err instanceof HelpRequested ? err.text + ctlSummary() : err.text);
      return;
    }
    if (err instanceof ConfigError) {
      complain(err.message);
      process.exitCode = EXIT_USAGE;
      return;
    }
    throw err;
  }

  const log = createLogOutput({ level: config.logLevel, format: config.logFormat, file: config.logFile });
  const logger = log.logger;
  installCrashHandlers(logger);
  logger.debug({ config: redactConfig(config) }, 'configuration');

  if (config.clusterEtcd.length > 0) {
    await startClusterNode(config, log, tls);
    return;
  }
  const server = new Server(config, logger, tls);
  try {
    await server.start();
  } catch (err) {
    const message = describeStartError(err, config);
    logger.fatal({ err }, message);
    complain(message);
    // Exit rather than return: a half-started server may still hold listeners open.
    process.exit(EXIT_START_FAILED);
  }
  installSignalHandlers(server, log);
}

/**
 * Cluster mode: the node joins the cluster in etcd before anything opens the data directory.
 * Loaded only here, so a single-node broker loads nothing from src/cluster.
 */
async function startClusterNode(config: Config, log: LogOutput, tls: TlsMaterial | null): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ClusterRuntime, ClusterError } = require('./cluster/cluster-runtime') as typeof import('./cluster/cluster-runtime');
  const logger = log.logger;
  const runtime = new ClusterRuntime(config, logger, tls, {
    onFatal: (message, err) => {
      logger.fatal({ err }, message);
      complain(message);
      // A node that cannot serve leaves at once: the lease ends with the process, and another leads.
      process.exit(EXIT_START_FAILED);
    },
  });
  try {
    await runtime.start();
  } catch (err) {
    // An unreachable etcd or a node name in use is the operator's to fix, like a bad flag.
    const usage = err instanceof ClusterError;
    const message = usage ? err.message : describeStartError(err, config);
    logger.fatal({ err }, message);
    complain(message);
    process.exit(usage ? EXIT_USAGE : EXIT_START_FAILED);
  }
  installSignalHandlers(runtime, log);
}

function describeStartError(err: unknown, config: Config): string {
  const e = (err ?? {}) as NodeJS.ErrnoException & { port?: number; address?: string; hostname?: string };
  const port = e.port ?? config.port;
  switch (e.code) {
    case 'EADDRINUSE':
      return `cannot listen on port ${port}: address in use`;
    case 'EACCES':
      return `cannot listen on port ${port}: permission denied`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${e.address ?? config.host}: address not available on this host`;
    case 'ENOTFOUND':
      return `cannot listen on ${e.hostname ?? config.host}: host name not found`;
    default:
      return `cannot start: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** What the signals act on: the broker, or a cluster node running whichever role it has. */
type Stoppable = Pick<Server, 'stop' | 'config' | 'reloadTls'> & { readonly connections: { readonly size: number } };

function installSignalHandlers(server: Stoppable, log: LogOutput): void {
  const logger = log.logger;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal during shutdown; exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, connections: server.connections.size }, 'shutting down');
    const t0 = Date.now();
    const timeoutMs = server.config.shutdownTimeout;
    setTimeout(() => {
      logger.error(`shutdown did not finish within ${timeoutMs / 1000} s; exiting`);
      process.exit(1);
    }, timeoutMs);
    server.stop('shutdown').then(
      () => {
        logger.info({ signal, ms: Date.now() - t0 }, 'stopped');
        // Explicit exit: lingering handles must not keep a stopped broker alive.
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // SIGHUP reloads the TLS certificates (and no longer ends the process, as it would by default).
  process.on('SIGHUP', () => {
    if (!stopping) server.reloadTls();
  });
  // SIGUSR1 opens the log file again by its path: logrotate has moved the old one away ("create" mode).
  process.on('SIGUSR1', () => {
    const file = server.config.logFile;
    if (file === '') return logger.info('SIGUSR1: logging to stdout, no log file to reopen');
    log.reopen();
    logger.info({ file }, 'log file reopened');
  });
}

function installCrashHandlers(logger: Logger): void {
  const crash = (what: string) => (err: unknown) => {
    try {
      logger.fatal({ err }, what);
    } catch {
      // The stderr line below still makes the crash visible.
    }
    complain(`${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(EXIT_SOFTWARE);
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled promise rejection'));
}

main().catch((err: unknown) => {
  complain(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(EXIT_SOFTWARE);
});

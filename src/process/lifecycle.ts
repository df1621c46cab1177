// What the server and the worker processes share: configuration → database (AWS secret,
// DATABASE_URL, or embedded) → migrations → credentials' key → engine, and a bounded shutdown on
// SIGTERM/SIGINT. Every line is JSON (pino), start-up included; a start-up failure is one line
// on stderr and exit code 1, never a stack trace.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { readConfig, redactUrl } from '../config/config.ts';
import { checkStoredCredentials, loadKeyring } from '../config/encryption.ts';
import type { Config } from '../config/settings.ts';
import { DatabaseConnection } from '../db/client.ts';
import { acceptsStartupParameters, STALL_GRACE_MS } from '../db/connection.ts';
import type { EmbeddedPostgres } from '../db/embedded.ts';
import { applyMigrations } from '../db/migrations.ts';
import { locateDatabase } from '../db/source.ts';
import { type Engine, startEngine } from '../engine/engine.ts';
import type { Services } from '../http/routes.ts';
import { Metrics, serveMetrics } from '../observability/metrics.ts';
import { startTracing } from '../observability/tracing.ts';

export interface Running {
  log: ReturnType<typeof pino.destination>;
  logger: Logger;
  app?: FastifyInstance;
  metricsServer?: Server;
  /** Flushes and stops the export of traces, when on. */
  stopTracing?: () => Promise<void>;
  engine?: Engine;
  database?: DatabaseConnection;
  embedded?: EmbeddedPostgres;
  /** How long the drain may take before open connections are closed and steps in flight aborted. */
  shutdownTimeoutMs: number;
}

export interface Core {
  database: DatabaseConnection;
  services: Services;
  logger: Logger;
  metrics: Metrics | undefined;
  tracing: boolean;
}

// After the drain's deadline, closing the queue, the pool and the embedded database may take this much longer.
const CLEANUP_MS = 5000;

/** Runs a process: reads the configuration, starts it, and stops it on SIGTERM/SIGINT. */
export async function runProcess(start: (config: Config, running: Running) => Promise<void>): Promise<void> {
  let config: Config;
  try {
    config = readConfig();
  } catch (error) {
    failures('Tolstoy').fatal(`Tolstoy could not start: ${(error as Error).message}`);
    process.exit(1);
  }
  const log = logDestination();
  const running: Running = { log, logger: pino({ level: config.logLevel, name: config.appName }, log), shutdownTimeoutMs: config.shutdownTimeoutMs };
  onSignals(() => shutdown(running));
  try {
    await start(config, running);
  } catch (error) {
    log.flushSync();
    failures(config.appName).fatal(`Tolstoy could not start: ${(error as Error).message}`);
    await shutdown(running, 1);
  }
}

/** Everything but HTTP: the database, migrated, the key that opens credentials, and the engine. */
export async function startCore(config: Config, running: Running): Promise<Core> {
  const { logger } = running;
  for (const name of config.ignored) logger.warn(`${name} is ignored: the database URLs come from AWS Secrets Manager.`);
  running.stopTracing = await startTracing(config.appName);
  const source = await locateDatabase(config);
  running.embedded = source.embedded;
  logger.info(`Database: ${source.origin} (${redactUrl(source.urls.url)})`);
  const report = await applyMigrations(source.urls.directUrl);
  for (const name of report.applied) logger.info(`Applied migration ${name}`);
  for (const name of report.modified) logger.warn(`Migration ${name} was changed after it was applied.`);
  const reread = source.reread;
  const timeouts = config.databaseTimeouts;
  const startupParameters = await acceptsStartupParameters(source.urls.url, timeouts);
  if (!startupParameters) {
    logger.warn(
      `The database at ${redactUrl(source.urls.url)} (a connection pooler) refuses startup parameters, so Tolstoy alone bounds statements ` +
        `(${timeouts.statementMs + STALL_GRACE_MS} ms). To have PostgreSQL enforce the limits too, set them on the role: ` +
        `ALTER ROLE <user> SET statement_timeout = '${timeouts.statementMs}ms'; ALTER ROLE <user> SET idle_in_transaction_session_timeout = '${timeouts.idleInTransactionMs}ms';`,
    );
  }
  const database = new DatabaseConnection(source.urls.url, reread && (async () => (await reread()).url), {
    preparedStatements: config.preparedStatements,
    timeouts,
    startupParameters,
  });
  running.database = database;
  const keyring = await loadKeyring(config, source.urls.encryptionKeys);
  await checkStoredCredentials(database.current, keyring);
  const metrics = config.metricsPort === undefined ? undefined : new Metrics();
  metrics?.watch(() => database.current);
  running.engine = await startEngine({ database, directUrl: source.urls.directUrl, keyring, settings: config.engine, timeouts, log: logger, metrics });
  if (metrics) {
    running.metricsServer = await listenForMetrics(metrics, config, logger);
    const address = running.metricsServer.address() as AddressInfo;
    logger.info(`Metrics at http://${config.metricsHost}:${address.port}/metrics`);
  }
  return { database, services: { keyring, runs: running.engine.runs }, logger, metrics, tracing: running.stopTracing !== undefined };
}

// Outside production, a second Tolstoy on the machine finds the default port taken by the first.
async function listenForMetrics(metrics: Metrics, config: Config, logger: Logger): Promise<Server> {
  const { metricsPort: port, metricsHost: host } = config;
  try {
    return await serveMetrics(metrics, port!, host);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !config.metricsPortFallback) {
      throw listenFailure(error, 'Metrics', host, port!, 'TOLSTOY_METRICS_PORT (or TOLSTOY_METRICS_HOST)');
    }
    const server = await serveMetrics(metrics, 0, host);
    const moved = (server.address() as AddressInfo).port;
    logger.info(`Metrics port ${port} is in use (another Tolstoy?): metrics are on port ${moved} instead. Set TOLSTOY_METRICS_PORT to choose one.`);
    return server;
  }
}

/** Why a server cannot listen, naming the variables that move it, when its address is the reason. */
export function listenFailure(error: unknown, what: string, host: string, port: number, variables: string): Error {
  const { code } = error as NodeJS.ErrnoException;
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') return new Error(`${what} cannot listen on ${address}: the address is in use (another Tolstoy?). Set ${variables} to move it.`);
  if (code === 'EADDRNOTAVAIL' || code === 'EACCES') return new Error(`${what} cannot listen on ${address} (${code}). Set ${variables} to move it.`);
  return error as Error;
}

// Why a process could not start: one JSON line on stderr, written at once (the process exits next).
function failures(name: string): Logger {
  return pino({ name }, pino.destination({ dest: 2, sync: true }));
}

// Log lines are written in batches rather than one system call each (one line per request
// otherwise costs a tenth of the throughput): at 4 KiB, at least every half second, and at shutdown.
function logDestination() {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), 500).unref();
  return destination;
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      void stop();
    });
  }
}

// The drain, of HTTP and of the worker at once: no new connections and no new jobs; idle
// connections close at once, and every answer from now on closes its connection; requests that
// arrived whole are answered, and the steps in flight finish. At the deadline, the connections
// still open (a client stalled mid-upload, say) are closed and the steps still in flight are
// aborted, their runs left to resume elsewhere. Then the queue, the pool and the embedded
// database close, and if even that hangs (a stalled database), the process exits anyway.
export async function shutdown(running: Running, exitCode = 0): Promise<void> {
  const { shutdownTimeoutMs } = running;
  const server = running.app?.server;
  const deadline = setTimeout(() => server?.closeAllConnections(), shutdownTimeoutMs);
  setTimeout(() => {
    running.logger.error(`Tolstoy did not stop within ${shutdownTimeoutMs + CLEANUP_MS} ms; exiting.`);
    running.log.flushSync();
    process.exit(1);
  }, shutdownTimeoutMs + CLEANUP_MS).unref();
  try {
    running.metricsServer?.close();
    await Promise.all([running.app?.close(), running.engine?.stop(shutdownTimeoutMs)]);
    clearTimeout(deadline);
    await running.stopTracing?.().catch(() => undefined);
    await running.database?.close();
    await running.embedded?.stop();
    running.logger.info('Tolstoy stopped.');
    running.log.flushSync();
  } catch (error) {
    running.logger.error(`Tolstoy did not stop cleanly: ${(error as Error).message}`);
    running.log.flushSync();
    exitCode = 1;
  }
  process.exit(exitCode);
}

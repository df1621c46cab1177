// The process: configuration → database (AWS secret, DATABASE_URL, or embedded) → migrations →
// HTTP server, and a graceful shutdown on SIGTERM/SIGINT. A start-up failure is one line on
// stderr and exit code 1, never a stack trace.
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type Config, readConfig, redactUrl } from './config/config.ts';
import { DatabaseConnection } from './db/client.ts';
import { acceptsStartupParameters, STALL_GRACE_MS } from './db/connection.ts';
import type { EmbeddedPostgres } from './db/embedded.ts';
import { applyMigrations } from './db/migrations.ts';
import { locateDatabase } from './db/source.ts';
import { buildApp } from './http/app.ts';

interface Running {
  log?: ReturnType<typeof pino.destination>;
  app?: FastifyInstance;
  database?: DatabaseConnection;
  embedded?: EmbeddedPostgres;
  /** How long the drain may take before open connections are closed. */
  shutdownTimeoutMs: number;
}

// After the drain's deadline, closing the pool and the embedded database may take this much longer.
const CLEANUP_MS = 5000;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = readConfig();
  } catch (error) {
    console.error(`Tolstoy could not start: ${(error as Error).message}`);
    process.exit(1);
  }
  const running: Running = { shutdownTimeoutMs: config.shutdownTimeoutMs };
  onSignals(() => shutdown(running));
  try {
    await start(config, running);
  } catch (error) {
    console.error(`Tolstoy could not start: ${(error as Error).message}`);
    await shutdown(running, 1);
  }
}

async function start(config: Config, running: Running): Promise<void> {
  for (const name of config.ignored) console.warn(`${name} is ignored: the database URLs come from AWS Secrets Manager.`);
  const source = await locateDatabase(config);
  running.embedded = source.embedded;
  console.log(`Database: ${source.origin} (${redactUrl(source.urls.url)})`);
  const report = await applyMigrations(source.urls.directUrl);
  for (const name of report.applied) console.log(`Applied migration ${name}`);
  for (const name of report.modified) console.warn(`Migration ${name} was changed after it was applied.`);
  const reread = source.reread;
  const timeouts = config.databaseTimeouts;
  const startupParameters = await acceptsStartupParameters(source.urls.url, timeouts);
  if (!startupParameters) {
    console.warn(
      `The database at ${redactUrl(source.urls.url)} (a connection pooler) refuses startup parameters, so Tolstoy alone bounds statements ` +
        `(${timeouts.statementMs + STALL_GRACE_MS} ms). To have PostgreSQL enforce the limits too, set them on the role: ` +
        `ALTER ROLE <user> SET statement_timeout = '${timeouts.statementMs}ms'; ALTER ROLE <user> SET idle_in_transaction_session_timeout = '${timeouts.idleInTransactionMs}ms';`,
    );
  }
  running.database = new DatabaseConnection(source.urls.url, reread && (async () => (await reread()).url), {
    preparedStatements: config.preparedStatements,
    timeouts,
    startupParameters,
  });
  running.log = logDestination();
  const logger = pino({ level: config.logLevel, name: config.appName }, running.log);
  running.app = await buildApp({ database: running.database, logger, requestTimeoutMs: config.requestTimeoutMs });
  await running.app.listen({ port: config.port, host: config.host });
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

// The drain: no new connections; idle ones close at once, and every answer from now on closes
// its connection. Requests that arrived whole are answered; at the deadline the connections
// still open (a client stalled mid-upload, say) are closed. Then the pool closes and the
// embedded database stops, and if even that hangs (a stalled database), the process exits anyway.
async function shutdown(running: Running, exitCode = 0): Promise<void> {
  const { shutdownTimeoutMs } = running;
  const server = running.app?.server;
  const deadline = setTimeout(() => server?.closeAllConnections(), shutdownTimeoutMs);
  setTimeout(() => {
    console.error(`Tolstoy did not stop within ${shutdownTimeoutMs + CLEANUP_MS} ms; exiting.`);
    running.log?.flushSync();
    process.exit(1);
  }, shutdownTimeoutMs + CLEANUP_MS).unref();
  try {
    await running.app?.close();
    clearTimeout(deadline);
    await running.database?.close();
    await running.embedded?.stop();
    running.log?.flushSync();
  } catch (error) {
    console.error(`Tolstoy did not stop cleanly: ${(error as Error).message}`);
    exitCode = 1;
  }
  process.exit(exitCode);
}

await main();

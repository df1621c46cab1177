// The process: configuration → database (AWS secret, DATABASE_URL, or embedded) → migrations →
// HTTP server, and a graceful shutdown on SIGTERM/SIGINT. A start-up failure is one line on
// stderr and exit code 1, never a stack trace.
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from './app.ts';
import { readConfig, redactUrl, type Config } from './config.ts';
import { DatabaseConnection } from './db/client.ts';
import type { EmbeddedPostgres } from './db/embedded.ts';
import { applyMigrations } from './db/migrations.ts';
import { locateDatabase } from './db/source.ts';

interface Running {
  log?: ReturnType<typeof pino.destination>;
  app?: FastifyInstance;
  database?: DatabaseConnection;
  embedded?: EmbeddedPostgres;
}

async function main(): Promise<void> {
  const running: Running = {};
  onSignals(() => shutdown(running));
  try {
    await start(readConfig(), running);
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
  running.database = new DatabaseConnection(source.urls.url, reread && (async () => (await reread()).url), { preparedStatements: config.preparedStatements });
  running.log = logDestination();
  running.app = await buildApp({ database: running.database, logger: pino({ level: config.logLevel, name: config.appName }, running.log) });
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

// In-flight requests finish (app.close waits for them), then the pool closes, then the
// embedded database stops.
async function shutdown(running: Running, exitCode = 0): Promise<void> {
  try {
    await running.app?.close();
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

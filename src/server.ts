// The process: configuration → database (embedded unless DATABASE_URL is set) → migrations →
// HTTP server, and a graceful shutdown on SIGTERM/SIGINT.
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import { ConfigError, readConfig, redactUrl, type Config } from './config.ts';
import { createDatabase, type Database } from './db/client.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded.ts';
import { applyMigrations } from './db/migrations.ts';

interface Running {
  app?: FastifyInstance;
  db?: Database;
  embedded?: EmbeddedPostgres;
}

async function main(): Promise<void> {
  const config = readConfig();
  const running: Running = {};
  onSignals(() => shutdown(running));
  try {
    await start(config, running);
  } catch (error) {
    console.error(`Tolstoy could not start: ${(error as Error).message}`);
    await shutdown(running, 1);
  }
}

async function start(config: Config, running: Running): Promise<void> {
  let { databaseUrl, directUrl } = config;
  if (!databaseUrl) {
    running.embedded = await startEmbeddedPostgres({ dataDir: config.dataDir });
    databaseUrl = directUrl = running.embedded.url;
    console.log(`Embedded PostgreSQL running with data in ${running.embedded.dataDir}`);
  }
  const report = await applyMigrations(directUrl!);
  for (const name of report.applied) console.log(`Applied migration ${name}`);
  for (const name of report.modified) console.warn(`Migration ${name} was changed after it was applied to ${redactUrl(directUrl!)}`);
  running.db = createDatabase(databaseUrl);
  running.app = await buildApp({ db: running.db, logger: { level: config.logLevel } });
  await running.app.listen({ port: config.port, host: config.host });
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
    await running.db?.$disconnect();
    await running.embedded?.stop();
  } catch (error) {
    console.error(`Tolstoy did not stop cleanly: ${(error as Error).message}`);
    exitCode = 1;
  }
  process.exit(exitCode);
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : `Tolstoy could not start: ${(error as Error).message}`);
  process.exit(1);
});

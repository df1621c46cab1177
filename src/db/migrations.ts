// Applies the SQL migrations under prisma/migrations the way `prisma migrate deploy` does,
// keeping its `_prisma_migrations` bookkeeping, so that Prisma's own `migrate deploy` and
// `migrate status` agree with what this applied wherever Prisma's schema engine can run.
// We need it because that engine cannot be downloaded on machines without internet.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectionConfig, DEFAULT_TIMEOUTS } from './connection.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations/', import.meta.url));

// The advisory lock key Prisma's schema engine takes, so the two never migrate at once.
const PRISMA_ADVISORY_LOCK = 72707369;

const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface Migration {
  name: string;
  script: string;
  checksum: string;
}

export interface MigrationReport {
  applied: string[];
  /** Applied earlier, but the file has changed since. */
  modified: string[];
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'migration.sql'))).map((entry) => entry.name);
  return Promise.all(
    names.sort().map(async (name) => {
      const script = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      return { name, script, checksum: createHash('sha256').update(script).digest('hex') };
    }),
  );
}

export async function applyMigrations(url: string, dir = MIGRATIONS_DIR): Promise<MigrationReport> {
  const migrations = await readMigrations(dir);
  // A migration may run long: only connecting is bounded.
  const client = new pg.Client(connectionConfig(url, { timeouts: { ...DEFAULT_TIMEOUTS, statementMs: 0, idleInTransactionMs: 0 } }));
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK]);
    // Only create the table when missing: a role without CREATE on the schema may still migrate nothing.
    const {
      rows: [found],
    } = await client.query<{ table: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS table`);
    if (!found?.table) await client.query(CREATE_MIGRATIONS_TABLE);
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
    );
    const failed = rows.find((row) => row.finished_at === null && row.rolled_back_at === null);
    if (failed) {
      throw new Error(
        `Migration ${failed.migration_name} failed earlier and was never resolved; repair the database, then mark it with \`prisma migrate resolve\` before migrating again.`,
      );
    }
    const finished = new Map(rows.filter((row) => row.finished_at !== null).map((row) => [row.migration_name, row.checksum]));
    const report: MigrationReport = { applied: [], modified: [] };
    for (const migration of migrations) {
      const checksum = finished.get(migration.name);
      if (checksum === undefined) {
        await applyOne(client, migration);
        report.applied.push(migration.name);
      } else if (checksum !== migration.checksum) {
        report.modified.push(migration.name);
      }
    }
    return report;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK]).catch(() => undefined);
    await client.end();
  }
}

// One transaction per migration: PostgreSQL's DDL is transactional, so a migration that fails
// leaves neither its changes nor a half-written bookkeeping row behind.
async function applyOne(client: pg.Client, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)', [
      randomUUID(),
      migration.checksum,
      migration.name,
    ]);
    await client.query(migration.script);
    await client.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE migration_name = $1 AND finished_at IS NULL', [
      migration.name,
    ]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw new Error(`Migration ${migration.name} failed and was rolled back: ${(error as Error).message}`);
  }
}

import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { type Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { type ConnectionOptions, connectionConfig } from './connection.ts';

/** A transaction of Prisma Client's, as handed to `$transaction(async (tx) => …)`. */
export type Transaction = Prisma.TransactionClient;

export type Database = PrismaClient;

export interface DatabaseOptions extends ConnectionOptions {
  poolSize?: number;
  /** Prepare each statement once per connection (see statementName). */
  preparedStatements?: boolean;
}

export function createDatabase(url: string, { poolSize = 10, preparedStatements = true, ...connection }: DatabaseOptions = {}): Database {
  // The pool is ours so that its use can be measured (poolOf); Prisma ends it with the client.
  const pool = new pg.Pool({ ...connectionConfig(url, connection), max: poolSize });
  const adapter = new PrismaPg(pool, { disposeExternalPool: true, ...(preparedStatements && { statementNameGenerator: statementName }) });
  const database = new PrismaClient({ adapter });
  pools.set(database, pool);
  return database;
}

const pools = new WeakMap<Database, pg.Pool>();

/** How the database's connections are used: open, idle, and queries waiting for one. */
export function poolOf(database: Database): { total: number; idle: number; waiting: number } | undefined {
  const pool = pools.get(database);
  return pool && { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
}

// Named statements are prepared once per connection, sparing PostgreSQL the parsing and planning
// of every query after the first (a quarter of its work per request here). Poolers support them
// when configured to (PgBouncer's max_prepared_statements; Neon's pooler does); where one does
// not, DATABASE_PREPARED_STATEMENTS=false turns them off.
const statementNames = new Map<string, string>();
function statementName({ sql }: { sql: string }): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `tolstoy_${statementNames.size}`;
    statementNames.set(sql, name);
  }
  return name;
}

/** A JSON document as the text its column keeps (see schema.prisma). */
export function toJsonText(value: object | string | number | boolean | null): string {
  return JSON.stringify(value);
}

/** The JSON document a column keeps as text. */
export function fromJsonText<Document>(text: string): Document {
  return JSON.parse(text) as Document;
}

// How long a renewal that found nothing new holds off the next one.
const RENEWAL_PAUSE_MS = 30_000;

/**
 * The database the app queries. Given a way to read its URL again (the AWS secret), it renews
 * itself when the server rejects its credentials, as after a rotation of the secret: it re-reads
 * the URL once, and when that changed, moves to a new pool and closes the old one.
 */
export class DatabaseConnection {
  #database: Database;
  #url: string;
  readonly #rereadUrl: (() => Promise<string>) | undefined;
  #renewal: Promise<boolean> | undefined;
  #pausedUntil = 0;

  readonly #options: DatabaseOptions;

  constructor(url: string, rereadUrl?: () => Promise<string>, options: DatabaseOptions = {}) {
    this.#url = url;
    this.#options = options;
    this.#database = createDatabase(url, options);
    this.#rereadUrl = rereadUrl;
  }

  get current(): Database {
    return this.#database;
  }

  get url(): string {
    return this.#url;
  }

  /** Whether it moved to a new URL; concurrent callers share one renewal. */
  renew(): Promise<boolean> {
    if (!this.#rereadUrl || Date.now() < this.#pausedUntil) return Promise.resolve(false);
    this.#renewal ??= this.#switchIfChanged(this.#rereadUrl).finally(() => (this.#renewal = undefined));
    return this.#renewal;
  }

  async #switchIfChanged(rereadUrl: () => Promise<string>): Promise<boolean> {
    const url = await rereadUrl();
    if (url === this.#url) {
      this.#pausedUntil = Date.now() + RENEWAL_PAUSE_MS;
      return false;
    }
    const previous = this.#database;
    this.#url = url;
    this.#database = createDatabase(url, this.#options);
    await previous.$disconnect();
    return true;
  }

  close(): Promise<void> {
    return this.#database.$disconnect();
  }
}

import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import { connectionConfig } from './connection.ts';

export type Database = PrismaClient;

export function createDatabase(url: string, poolSize = 10): Database {
  return new PrismaClient({ adapter: new PrismaPg({ ...connectionConfig(url), max: poolSize }) });
}

/** A JSON document as the text its column keeps (see schema.prisma). */
export function toJsonText(value: object): string {
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

  constructor(url: string, rereadUrl?: () => Promise<string>) {
    this.#url = url;
    this.#database = createDatabase(url);
    this.#rereadUrl = rereadUrl;
  }

  get current(): Database {
    return this.#database;
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
    this.#database = createDatabase(url);
    await previous.$disconnect();
    return true;
  }

  close(): Promise<void> {
    return this.#database.$disconnect();
  }
}

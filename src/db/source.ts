// Where the database is: in the AWS secret (NODE_ENV=production or USE_AWS_SECRETS=true), at
// DATABASE_URL, or, outside production with neither, the embedded PostgreSQL.
import type { Config, DatabaseUrls } from '../config/settings.ts';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.ts';

export interface DatabaseSource {
  urls: DatabaseUrls;
  /** Where the URLs came from, for the start-up log. */
  origin: string;
  /** Reads the URLs again; only a secret can change under a running service. */
  reread?: () => Promise<DatabaseUrls>;
  embedded?: EmbeddedPostgres;
}

export async function locateDatabase(
  config: Config,
  embeddedIn: (dataDir: string, port?: number) => Promise<EmbeddedPostgres> = (dataDir, port) => startEmbeddedPostgres({ dataDir, port }),
): Promise<DatabaseSource> {
  const { secrets } = config;
  if (secrets) {
    // The AWS SDK is loaded only where it is used: it costs some 26 MB of memory.
    const { readDatabaseSecret } = await import('../config/secrets.ts');
    const reread = () => readDatabaseSecret(secrets);
    return { urls: await reread(), origin: `AWS Secrets Manager secret "${secrets.secretName}" in ${secrets.region}`, reread };
  }
  if (config.database) return { urls: config.database, origin: 'DATABASE_URL' };
  const port = config.postgresPort;
  const embedded = await embeddedIn(config.dataDir, port).catch((error: Error) => {
    if (port === undefined || !/Address already in use/.test(error.message)) throw error;
    throw new Error(
      `The embedded PostgreSQL cannot listen on 127.0.0.1:${port}: the address is in use (another Tolstoy?). Set TOLSTOY_POSTGRES_PORT to another port, or unset it for a free one.`,
    );
  });
  return { urls: { url: embedded.url, directUrl: embedded.url }, origin: `the embedded PostgreSQL with data in ${embedded.dataDir}`, embedded };
}

// `npm run db:migrate:deploy`: applies pending migrations, with Prisma's own bookkeeping, to the
// direct URL of the configured database (the AWS secret, DIRECT_URL or DATABASE_URL), or to the
// embedded PostgreSQL when none is configured.
import { readConfig, redactUrl } from '../src/config/config.ts';
import { useEmbeddedPostgres } from '../src/db/embedded.ts';
import { applyMigrations } from '../src/db/migrations.ts';
import { locateDatabase } from '../src/db/source.ts';

try {
  const source = await locateDatabase(readConfig(), useEmbeddedPostgres);
  try {
    const target = redactUrl(source.urls.directUrl);
    const { applied, modified } = await applyMigrations(source.urls.directUrl);
    for (const name of modified) console.warn(`Migration ${name} was changed after it was applied.`);
    console.log(applied.length === 0 ? `No pending migrations on ${target}.` : `Applied ${applied.join(', ')} to ${target}.`);
  } finally {
    await source.embedded?.stop();
  }
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 1;
}

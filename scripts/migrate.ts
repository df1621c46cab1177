// `npm run db:migrate:deploy`: applies pending migrations to DIRECT_URL (or DATABASE_URL), or to
// the embedded PostgreSQL when neither is set, with Prisma's own bookkeeping.
import { readConfig, redactUrl } from '../src/config.ts';
import { useEmbeddedPostgres } from '../src/db/embedded.ts';
import { applyMigrations } from '../src/db/migrations.ts';

const config = readConfig();
const embedded = config.directUrl ? undefined : await useEmbeddedPostgres(config.dataDir);
const url = config.directUrl ?? embedded!.url;
try {
  const { applied, modified } = await applyMigrations(url);
  for (const name of modified) console.warn(`Migration ${name} was changed after it was applied.`);
  console.log(applied.length === 0 ? `No pending migrations on ${redactUrl(url)}.` : `Applied ${applied.join(', ')} to ${redactUrl(url)}.`);
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 1;
} finally {
  await embedded?.stop();
}

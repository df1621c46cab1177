// Runs the Prisma CLI on machines that cannot download Prisma's native schema engine.
// Commands that do not use the engine (generate, studio, db seed, …) get a placeholder for it,
// which Prisma accepts; commands that need it (migrate dev, db push, …) run as they are and, when
// the download fails, stop with one sentence that says what to do instead of a stack trace.
// Without DATABASE_URL, commands that need a database use the embedded PostgreSQL.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfig } from '../src/config/config.ts';
import { type EmbeddedPostgres, useEmbeddedPostgres } from '../src/db/embedded.ts';
import { applyMigrations } from '../src/db/migrations.ts';
import { locateDatabase } from '../src/db/source.ts';

const WITHOUT_ENGINE = ['generate', 'validate', 'format', 'version', 'studio', 'db seed'];
const WITHOUT_DATABASE = ['generate', 'validate', 'format', 'version'];
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const args = process.argv.slice(2);
const words = args.filter((arg) => !arg.startsWith('-'));
const command = words[0] === 'db' || words[0] === 'migrate' ? words.slice(0, 2).join(' ') : (words[0] ?? '');

const env = { ...process.env };
let embedded: EmbeddedPostgres | undefined;
if (WITHOUT_ENGINE.includes(command)) env.PRISMA_SCHEMA_ENGINE_BINARY ??= placeholderEngine();
if (!WITHOUT_DATABASE.includes(command)) {
  try {
    const source = await locateDatabase(readConfig(), useEmbeddedPostgres);
    embedded = source.embedded;
    env.DATABASE_URL = source.urls.url;
    env.DIRECT_URL = source.urls.directUrl;
    // The development database is migrated, as `npm start` would.
    if (embedded) await applyMigrations(embedded.url);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}

const exitCode = await prisma(args, env, !WITHOUT_ENGINE.includes(command));
await embedded?.stop();
process.exit(exitCode);

function prisma(args: string[], env: NodeJS.ProcessEnv, needsEngine: boolean): Promise<number> {
  const cli = join(ROOT, 'node_modules', 'prisma', 'build', 'index.js');
  const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['inherit', 'inherit', needsEngine ? 'pipe' : 'inherit'] });
  let errors = '';
  child.stderr?.on('data', (chunk) => (errors += chunk));
  // Let Prisma (Studio, say) stop first, then stop the embedded database after it.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      if (code !== 0 && /binaries\.prisma\.sh|schema-engine/.test(errors)) {
        console.error(
          `"prisma ${command}" needs Prisma's schema engine, which this machine cannot download from binaries.prisma.sh; ` +
            'write the migration SQL under prisma/migrations/ by hand and apply it with `npm run db:migrate:deploy` (see README, "Migrations").',
        );
      } else {
        process.stderr.write(errors);
      }
      resolve(code ?? 1);
    });
  });
}

// Prisma only checks that the file it is pointed at exists; nothing runs it for these commands.
function placeholderEngine(): string {
  const dir = join(ROOT, 'node_modules', '.cache', 'tolstoy');
  const file = join(dir, 'no-schema-engine');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, '#!/bin/sh\necho "placeholder: the schema engine is not available here" >&2\nexit 1\n');
    chmodSync(file, 0o755);
  }
  return file;
}

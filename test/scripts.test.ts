// The database scripts of the original README: each works here, or says in one sentence what
// it needs.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { freePort } from '../src/db/embedded.ts';
import { readMigrations } from '../src/db/migrations.ts';
import { freshDatabaseUrl } from './helper.ts';
import { startServer } from './process.ts';

const npm = (script: string, env: Record<string, string>) =>
  promisify(execFile)('npm', ['run', '--silent', script], { env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error) => ({ code: error.code as number, stdout: error.stdout as string, stderr: error.stderr as string }),
  );

t.test('db:migrate:deploy applies pending migrations, then none', async (t) => {
  const url = await freshDatabaseUrl(t);
  // The test database is cloned from a migrated template: forget that, to migrate from scratch.
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  await client.end();
  const first = await npm('db:migrate:deploy', { DATABASE_URL: url });
  t.equal(first.code, 0, first.stderr);
  const names = (await readMigrations()).map((migration) => migration.name).join(', ');
  t.match(first.stdout, `Applied ${names} to postgresql://postgres:****@`, 'every migration, and the password is not shown');
  const second = await npm('db:migrate:deploy', { DATABASE_URL: url });
  t.match(second.stdout, /No pending migrations/);
});

t.test('db:seed creates the demo organization once', async (t) => {
  const url = await freshDatabaseUrl(t);
  const first = await npm('db:seed', { DATABASE_URL: url });
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /Seeded: X-Org-ID: [0-9a-f-]{36} {2}X-User-ID: [0-9a-f-]{36}/);
  t.match(first.stdout, /The owner's API key \(shown this once\): tsk_[0-9A-Za-z]{59}/);
  const second = await npm('db:seed', { DATABASE_URL: url });
  t.match(second.stdout, /Already seeded/);
  t.notMatch(second.stdout, /tsk_/, 'the key is shown once only');
});

t.test('db:seed prints how to run its demo flow, and that command runs it on a fresh machine', async (t) => {
  const url = await freshDatabaseUrl(t);
  const port = String(await freePort());
  const seeded = await npm('db:seed', { DATABASE_URL: url, PORT: port });
  t.equal(seeded.code, 0, seeded.stderr);
  const command = seeded.stdout
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line.startsWith('curl '));
  t.ok(command, `a command to run the flow: ${seeded.stdout}`);
  t.match(command, `http://localhost:${port}/flows/`);
  const server = await startServer({ DATABASE_URL: url, PORT: port });
  t.teardown(() => server.process.kill('SIGKILL'));
  // Run as a newcomer pastes it into a shell.
  const { stdout } = await promisify(execFile)('sh', ['-c', `${command} --silent --max-time 20`]);
  const execution = JSON.parse(stdout);
  t.equal(execution.status, 'completed', stdout);
  t.equal(execution.output.name, 'Tolstoy Demo', "the flow read the demo organization through Tolstoy's own API");
  const again = await npm('db:seed', { DATABASE_URL: url, PORT: port });
  t.match(again.stdout, /Already seeded/);
  t.match(again.stdout, command!, 'the command is printed again');
});

t.test("db:migrate:dev and db:push say in one sentence that they need Prisma's schema engine", async (t) => {
  const url = await freshDatabaseUrl(t);
  // An unreachable mirror makes the engine download fail here as it does offline.
  for (const script of ['db:migrate:dev', 'db:push']) {
    const result = await npm(script, { DATABASE_URL: url, PRISMA_ENGINES_MIRROR: 'http://127.0.0.1:9' });
    t.equal(result.code, 1, script);
    t.match(
      result.stderr.trim(),
      /^"prisma (migrate dev|db push)" needs Prisma's schema engine, which this machine cannot download from binaries\.prisma\.sh; .*\.$/,
      script,
    );
    t.notMatch(result.stderr, /\n\s+at /, `${script}: no stack trace`);
  }
});

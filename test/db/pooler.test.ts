// Tolstoy behind a transaction-mode PgBouncer, as Neon's pooled DATABASE_URL is: the pooler
// refuses the timeouts as startup parameters, so Tolstoy notices at start-up, says how to set
// them on the role instead, and serves with its own bound on statements.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t, { type Test } from 'tap';
import { pgbouncer } from '../../scripts/debian.ts';
import { acceptsStartupParameters } from '../../src/db/connection.ts';
import { freePort } from '../../src/db/embedded.ts';
import { ownPostgres } from '../faults/postgres.ts';
import { startServer } from '../process.ts';

async function startPgBouncer(t: Test, serverUrl: string): Promise<string> {
  const upstream = new URL(serverUrl);
  const dir = join(tmpdir(), `tolstoy-pgbouncer-${randomUUID()}`);
  await mkdir(dir, { mode: 0o700 });
  const port = await freePort();
  await writeFile(join(dir, 'users.txt'), `"${upstream.username}" "${decodeURIComponent(upstream.password)}"\n`, { mode: 0o600 });
  await writeFile(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=127.0.0.1 port=${upstream.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  // PgBouncer refuses to run as root; as root, run it as PostgreSQL's own user.
  const runAs = userInfo().uid === 0 ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })) } : {};
  if (runAs.uid !== undefined) execFileSync('chown', ['-R', String(runAs.uid), dir]);
  const child = spawn(await pgbouncer(), [join(dir, 'pgbouncer.ini')], { ...runAs, stdio: 'ignore' });
  t.teardown(async () => {
    child.kill();
    await rm(dir, { recursive: true, force: true });
  });
  const url = new URL(serverUrl);
  url.port = String(port);
  for (let i = 0; ; i++) {
    const client = new pg.Client({ connectionString: url.toString() });
    try {
      await client.connect();
      await client.end();
      return url.toString();
    } catch (error) {
      if (i === 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

t.test('behind a transaction-mode pooler that refuses startup parameters', async (t) => {
  const postgres = await ownPostgres(t);
  const pooled = await startPgBouncer(t, postgres.url);
  t.equal(await acceptsStartupParameters(postgres.url), true, 'PostgreSQL itself takes them');
  t.equal(await acceptsStartupParameters(pooled), false, 'the pooler refuses them');

  const server = await startServer({ DATABASE_URL: pooled, DIRECT_URL: postgres.url, DATABASE_PREPARED_STATEMENTS: 'false' });
  t.teardown(() => server.process.kill('SIGKILL'));
  t.match(server.output(), /refuses startup parameters, so Tolstoy alone bounds statements \(6000 ms\)/);
  t.match(server.output(), /ALTER ROLE <user> SET statement_timeout = '5000ms'/);
  t.notOk(server.output().includes(decodeURIComponent(new URL(postgres.url).password)), 'the password is masked');

  const json = { 'content-type': 'application/json' };
  const organization = await fetch(`${server.base}/organizations`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ name: 'Pooled', owner: { email: 'o@example.com' } }),
  });
  t.equal(organization.status, 201, 'writes work through the pooler');
  const { id, owner } = (await organization.json()) as { id: string; owner: { id: string } };
  const tenant = { ...json, 'x-org-id': id, 'x-user-id': owner.id };
  const tool = await fetch(`${server.base}/tools`, { method: 'POST', headers: tenant, body: JSON.stringify({ name: 'T', baseUrl: 'https://t.example.com' }) });
  t.equal(tool.status, 201);
  const deleted = await fetch(`${server.base}/users/${owner.id}`, { method: 'DELETE', headers: tenant });
  t.equal(deleted.status, 409, 'transactions work through the pooler (the last member stays)');
  t.equal((await fetch(`${server.base}/ready`)).status, 200);
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);
});

// The process as `npm start` runs it: embedded PostgreSQL by default, DATABASE_URL when given
// (Neon-style TLS URLs included), data that persists, and a graceful stop on SIGTERM/SIGINT.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { freshDatabaseUrl } from './helper.ts';
import { failedStart, startServer } from './process.ts';

const postmasterRunning = async (dataDir: string) => {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return false;
  try {
    process.kill(Number((await readFile(pidFile, 'utf8')).split('\n')[0]), 0);
    return true;
  } catch {
    return false;
  }
};

t.test('with no DATABASE_URL it runs on an embedded PostgreSQL whose data persists', async (t) => {
  const dataDir = join(tmpdir(), `tolstoy-start-${randomUUID()}`);
  const first = await startServer({ TOLSTOY_DATA_DIR: dataDir, DATABASE_URL: '', DIRECT_URL: '' });
  t.match(first.output(), /Applied migration \d+_init/);
  t.match(first.output(), /Database: the embedded PostgreSQL with data in /);
  t.equal((await fetch(`${first.base}/ready`)).status, 200);
  const created: any = await (
    await fetch(`${first.base}/organizations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Persisted' }) })
  ).json();
  first.process.kill('SIGTERM');
  t.equal(await first.exited, 0, 'SIGTERM stops it cleanly');
  t.notOk(await postmasterRunning(dataDir), 'and stops the embedded database');

  const second = await startServer({ TOLSTOY_DATA_DIR: dataDir, DATABASE_URL: '', DIRECT_URL: '' });
  t.notMatch(second.output(), /Applied migration/, 'nothing left to migrate');
  const persisted: any = await (await fetch(`${second.base}/organizations/${created.id}`)).json();
  t.equal(persisted.name, 'Persisted');
  second.process.kill('SIGINT');
  t.equal(await second.exited, 0, 'SIGINT stops it cleanly too');
  t.notOk(await postmasterRunning(dataDir));
});

t.test('a request in flight when SIGTERM arrives is answered', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t) });
  const { port } = new URL(server.base);
  const body = JSON.stringify({ name: 'In flight' });
  const socket = connect(Number(port), '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk) => (answer += chunk));
  const closed = new Promise((resolve) => socket.on('close', resolve));
  await new Promise((resolve) => socket.on('connect', resolve));
  socket.write(
    `POST /organizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 5)}`,
  );
  await new Promise((r) => setTimeout(r, 200));
  server.process.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(server.process.exitCode, null, 'the server waits for the request');
  socket.write(body.slice(5));
  await closed;
  t.match(answer, /^HTTP\/1\.1 201 Created/);
  t.equal(await server.exited, 0);
});

t.test('with DATABASE_URL it uses that database and starts no embedded one', async (t) => {
  const url = await freshDatabaseUrl(t);
  const dataDir = join(tmpdir(), `tolstoy-unused-${randomUUID()}`);
  const server = await startServer({ DATABASE_URL: url, TOLSTOY_DATA_DIR: dataDir });
  await fetch(`${server.base}/organizations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Elsewhere' }) });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.equal((await client.query("SELECT count(*)::int AS n FROM organizations WHERE name = 'Elsewhere'")).rows[0].n, 1);
  await client.end();
  t.notOk(existsSync(dataDir));
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);
});

t.test('in production without a database it refuses to start, in one line', async (t) => {
  const { code, stderr } = await failedStart({ NODE_ENV: 'production', USE_AWS_SECRETS: 'false', DATABASE_URL: '', DIRECT_URL: '' });
  t.equal(code, 1);
  t.equal(stderr.trim().split('\n').length, 1, stderr);
  t.match(stderr, /DATABASE_URL is required in production when USE_AWS_SECRETS is false/);
});

t.test('in production only an API key or the operator token gets past 401', async (t) => {
  const production = { NODE_ENV: 'production', USE_AWS_SECRETS: 'false', DATABASE_URL: await freshDatabaseUrl(t), HOST: '127.0.0.1' };
  const token = randomUUID() + randomUUID();
  const server = await startServer({ ...production, TOLSTOY_ADMIN_TOKEN: token, LOG_LEVEL: 'info' });
  t.notMatch(server.output(), /WARNING/, 'keys and a closed sign-up: nothing to warn about');
  const json = { 'content-type': 'application/json' };
  const signup = (headers: Record<string, string>) =>
    fetch(`${server.base}/organizations`, {
      method: 'POST',
      headers: { ...json, ...headers },
      body: JSON.stringify({ name: 'Prod', owner: { email: 'o@prod.test' } }),
    });
  t.equal((await signup({})).status, 401, 'sign-up is closed');
  const created: any = await (await signup({ authorization: `Bearer ${token}` })).json();
  t.match(created.apiKey.key, /^tsk_/, 'the operator creates it, with the owner and their first key');
  const tenant = { 'x-org-id': created.id, 'x-user-id': created.owner.id };
  const anonymous = await fetch(`${server.base}/tools`, { headers: tenant });
  t.equal(anonymous.status, 401, 'tenant headers alone are refused');
  t.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="tolstoy"');
  t.equal((await fetch(`${server.base}/organizations`)).status, 401, 'so is listing organizations anonymously');
  const withKey = await fetch(`${server.base}/tools`, { headers: { authorization: `Bearer ${created.apiKey.key}` } });
  t.equal(withKey.status, 200, 'the key gets in');
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);
  t.match(server.output(), /"url":"\/tools"/, 'the requests are in the access log');
  t.notOk(server.output().includes(created.apiKey.key), 'the key is not');
  t.notOk(server.output().includes(token), 'nor the operator token');

  const trusting = await startServer({ ...production, TOLSTOY_AUTH: 'headers', DATABASE_URL: production.DATABASE_URL });
  t.match(trusting.output(), /WARNING: TOLSTOY_AUTH=headers in production/, 'tenant headers in production are warned about');
  t.match(trusting.output(), /no one can create an organization/, 'and so is a closed sign-up without an operator token');
  t.equal((await fetch(`${trusting.base}/tools`, { headers: tenant })).status, 200);
  trusting.process.kill('SIGTERM');
  t.equal(await trusting.exited, 0);
});

t.test('a Neon-style URL (sslmode=require, channel_binding=require) connects over verified TLS', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.ext',
    '-out',
    'server.pem',
  );
  const database = await startEmbeddedPostgres({ dataDir: join(tmpdir(), `tolstoy-tls-pg-${randomUUID()}`), ephemeral: true });
  t.teardown(() => database.stop());
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const dataDir = (await admin.query('SHOW data_directory')).rows[0].data_directory as string;
  const owner = execFileSync('stat', ['-c', '%u:%g', dataDir], { encoding: 'utf8' }).trim().split(':').map(Number);
  for (const file of ['server.pem', 'server.key']) {
    await writeFile(join(dataDir, file), await readFile(join(dir, file)), { mode: 0o600 });
    await chown(join(dataDir, file), owner[0]!, owner[1]!);
  }
  // Only TLS connections are let in from now on.
  const hba = await readFile(join(dataDir, 'pg_hba.conf'), 'utf8');
  await writeFile(join(dataDir, 'pg_hba.conf'), hba.replace(/^host(\s)/gm, 'hostssl$1'));
  await admin.query("ALTER SYSTEM SET ssl = 'on'");
  await admin.query("ALTER SYSTEM SET ssl_cert_file = 'server.pem'");
  await admin.query("ALTER SYSTEM SET ssl_key_file = 'server.key'");
  await admin.query('SELECT pg_reload_conf()');
  await admin.end();

  const url = new URL(database.url);
  url.hostname = 'localhost';
  const plain = new pg.Client({ connectionString: url.toString() });
  await t.rejects(plain.connect(), /no pg_hba.conf entry|SSL/, 'a connection without TLS is refused');
  url.search = '?sslmode=require&channel_binding=require';
  const server = await startServer({ DATABASE_URL: url.toString(), NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
  t.equal((await fetch(`${server.base}/ready`)).status, 200);
  t.equal(
    (await fetch(`${server.base}/organizations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"Over TLS"}' })).status,
    201,
  );
  t.notMatch(server.output(), /SECURITY WARNING/, 'sslmode=require is read as verify-full without a warning');
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);
});

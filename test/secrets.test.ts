// Configuration from AWS Secrets Manager, against a real Secrets Manager endpoint (moto in
// server mode), and real AWS error responses for what moto cannot emulate.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import t, { type Test } from 'tap';
import { SECRET_ATTEMPTS } from '../src/config/secrets.ts';
import { freePort } from '../src/db/embedded.ts';
import { fakeAws, REGION, startMoto, TEST_CREDENTIALS } from './aws.ts';
import { freshDatabaseUrl } from './helper.ts';
import { failedStart, messages, type ServerProcess, startServer } from './process.ts';

const moto = await startMoto(t);
const outputs: string[] = [];

// The service connects as a role of its own, whose password must never show.
const PASSWORD = `Pw-${randomBytes(12).toString('hex')}`;
const passwords = [PASSWORD];
const ROLE = `tolstoy_app_${randomBytes(4).toString('hex')}`;
const databaseUrl = await freshDatabaseUrl(t);
await admin(databaseUrl, [
  `CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`,
  `GRANT USAGE ON SCHEMA public TO ${ROLE}`,
  `GRANT ALL ON ALL TABLES IN SCHEMA public TO ${ROLE}`,
  // The queue's own schema (pg-boss), as the owner of the database would have it.
  `GRANT USAGE ON SCHEMA pgboss TO ${ROLE}`,
  `GRANT ALL ON ALL TABLES IN SCHEMA pgboss TO ${ROLE}`,
  `GRANT ALL ON ALL SEQUENCES IN SCHEMA pgboss TO ${ROLE}`,
  `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgboss TO ${ROLE}`,
]);
t.teardown(() => admin(databaseUrl, [`DROP OWNED BY ${ROLE}`, `DROP ROLE ${ROLE}`]));
const urlWith = (password: string) => {
  const url = new URL(databaseUrl);
  url.username = ROLE;
  url.password = password;
  return url.toString();
};

async function admin(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

let secrets = 0;
async function secret(value: unknown): Promise<string> {
  const name = `tolstoy-test-${++secrets}`;
  await moto.putSecret(name, typeof value === 'string' ? value : JSON.stringify(value));
  return name;
}

function awsEnv(secretName: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    USE_AWS_SECRETS: 'true',
    AWS_REGION: REGION,
    AWS_SECRET_NAME: secretName,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint,
    ...TEST_CREDENTIALS,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    DATABASE_URL: '',
    DIRECT_URL: '',
    LOG_LEVEL: 'info',
    ...overrides,
  };
}

// Stopped when the subtest `t` ends, which collects its output for the leak check at the end.
async function started(t: Test, env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServer(env);
  t.teardown(async () => {
    server.process.kill('SIGTERM');
    await server.exited;
    outputs.push(server.output());
  });
  return server;
}

async function refused(t: Test, env: Record<string, string>, message: RegExp): Promise<void> {
  const { code, stdout, stderr } = await failedStart(env);
  outputs.push(stdout, stderr);
  t.equal(code, 1, 'exits with 1');
  t.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);
  t.match(messages(stderr), message);
  t.notMatch(stderr, /\n\s+at /, 'no stack trace');
}

t.test('with the secret present, the service serves on the database it names', async (t) => {
  const name = await secret({ DATABASE_URL: urlWith(PASSWORD), DIRECT_URL: urlWith(PASSWORD) });
  const server = await started(t, awsEnv(name));
  t.match(messages(server.output()), new RegExp(`Database: AWS Secrets Manager secret "${name}" in ${REGION} \\(postgresql://${ROLE}:\\*\\*\\*\\*@`));
  const created = await fetch(`${server.base}/organizations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"From the secret"}',
  });
  t.equal(created.status, 201);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  t.equal((await client.query("SELECT count(*)::int AS n FROM organizations WHERE name = 'From the secret'")).rows[0].n, 1);
  await client.end();
});

t.test('production reads the secret without being told to, the credentials key included', async (t) => {
  const name = await secret({ DATABASE_URL: urlWith(PASSWORD), TOLSTOY_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  // The key only in the secret: none in the environment.
  const env = awsEnv(name, { NODE_ENV: 'production', HOST: '127.0.0.1', TOLSTOY_ENCRYPTION_KEY: '' });
  delete (env as Record<string, string | undefined>).USE_AWS_SECRETS;
  const server = await started(t, env);
  t.equal((await fetch(`${server.base}/ready`)).status, 200);
});

t.test('the secret wins over DATABASE_URL and DIRECT_URL in the environment, which are reported as ignored', async (t) => {
  const name = await secret({ DATABASE_URL: urlWith(PASSWORD) });
  const server = await started(
    t,
    awsEnv(name, { DATABASE_URL: 'postgresql://nobody:nothing@127.0.0.1:1/none', DIRECT_URL: 'postgresql://nobody:nothing@127.0.0.1:1/none' }),
  );
  t.equal((await fetch(`${server.base}/ready`)).status, 200);
  t.match(server.output(), /DATABASE_URL is ignored: the database URLs come from AWS Secrets Manager\./);
  t.match(server.output(), /DIRECT_URL is ignored/);
});

t.test('a secret that does not exist', async (t) => {
  await refused(t, awsEnv('no-such-secret'), /The secret "no-such-secret" in us-east-1 does not exist; check AWS_SECRET_NAME and AWS_REGION\./);
});

t.test('a secret that is not JSON', async (t) => {
  await refused(t, awsEnv(await secret(`DATABASE_URL=${urlWith(PASSWORD)}`)), /is not JSON; store a JSON object such as/);
});

t.test('a secret without DATABASE_URL', async (t) => {
  await refused(t, awsEnv(await secret({ DIRECT_URL: urlWith(PASSWORD) })), /has no DATABASE_URL/);
  await refused(t, awsEnv(await secret(['not', 'an', 'object'])), /is not a JSON object such as/);
});

t.test('a secret whose DATABASE_URL is not a PostgreSQL URL', async (t) => {
  await refused(
    t,
    awsEnv(await secret({ DATABASE_URL: `mysql://root:${PASSWORD}@db/x` })),
    /DATABASE_URL in the secret "[^"]+" must be a postgresql:\/\/ URL\./,
  );
});

t.test('an endpoint that is down, after retries', async (t) => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  await refused(
    t,
    awsEnv('x', { AWS_ENDPOINT_URL_SECRETS_MANAGER: closed }),
    new RegExp(`${closed} cannot be reached \\(ECONNREFUSED\\) after ${SECRET_ATTEMPTS} attempts while reading the secret "x" in us-east-1\\.`),
  );
});

t.test('an endpoint that never answers, after retries', async (t) => {
  const silent = await fakeAws(t, () => 'hang');
  await refused(
    t,
    awsEnv('x', { AWS_ENDPOINT_URL_SECRETS_MANAGER: silent.endpoint, AWS_SECRETS_TIMEOUT_MS: '300' }),
    /did not answer within the timeout \(AWS_SECRETS_TIMEOUT_MS\)/,
  );
  t.equal(silent.requests(), SECRET_ATTEMPTS, `tried ${SECRET_ATTEMPTS} times`);
});

t.test('transient failures are retried with backoff', async (t) => {
  const name = await secret({ DATABASE_URL: urlWith(PASSWORD) });
  const flaky = await fakeAws(t, (n) => (n <= 2 ? { status: 500, type: 'InternalServiceError', message: 'try again' } : 'forward'), moto.endpoint);
  const server = await started(t, awsEnv(name, { AWS_ENDPOINT_URL_SECRETS_MANAGER: flaky.endpoint }));
  t.equal((await fetch(`${server.base}/ready`)).status, 200);
  t.equal(flaky.requests(), 3, 'two failures, then the secret');
});

t.test('access denied names the IAM action and the secret', async (t) => {
  const denying = await fakeAws(t, () => ({
    status: 400,
    type: 'AccessDeniedException',
    message:
      'User: arn:aws:iam::123456789012:user/tolstoy is not authorized to perform: secretsmanager:GetSecretValue on resource: tolstoy-db-secret because no identity-based policy allows the secretsmanager:GetSecretValue action',
  }));
  await refused(
    t,
    awsEnv('tolstoy-db-secret', { AWS_ENDPOINT_URL_SECRETS_MANAGER: denying.endpoint }),
    /Access to the secret "tolstoy-db-secret" in us-east-1 was denied: the AWS identity in use needs the IAM permission secretsmanager:GetSecretValue on it\./,
  );
});

t.test('credentials that AWS rejects', async (t) => {
  const rejecting = await fakeAws(t, () => ({
    status: 400,
    type: 'UnrecognizedClientException',
    message: 'The security token included in the request is invalid.',
  }));
  await refused(
    t,
    awsEnv('tolstoy-db-secret', { AWS_ENDPOINT_URL_SECRETS_MANAGER: rejecting.endpoint }),
    /AWS rejected the credentials in use while reading the secret "tolstoy-db-secret" in us-east-1 \(UnrecognizedClientException\)/,
  );
});

t.test('no credentials at all', async (t) => {
  await refused(
    t,
    awsEnv('tolstoy-db-secret', { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' }),
    /No AWS credentials were found to read the secret "tolstoy-db-secret" in us-east-1/,
  );
});

t.test('after the secret rotates, the service re-reads it once and reconnects', async (t) => {
  const rotating = `${ROLE}_rotating`;
  const first = `Pw-${randomBytes(12).toString('hex')}`;
  const second = `Pw-${randomBytes(12).toString('hex')}`;
  passwords.push(first, second);
  await admin(databaseUrl, [`CREATE ROLE ${rotating} LOGIN PASSWORD '${first}' IN ROLE ${ROLE}`]);
  t.teardown(() => admin(databaseUrl, [`DROP ROLE ${rotating}`]));
  const url = (password: string) => urlWith(password).replace(`${ROLE}:`, `${rotating}:`);
  const name = await secret({ DATABASE_URL: url(first) });
  const server = await started(t, awsEnv(name, { LOG_LEVEL: 'warn' }));
  const create = () => fetch(`${server.base}/organizations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"Rotation"}' });
  t.equal((await create()).status, 201);

  // Rotate: a new password in the database and in the secret, and the old sessions end.
  await admin(databaseUrl, [
    `ALTER ROLE ${rotating} PASSWORD '${second}'`,
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${rotating}'`,
  ]);
  await moto.putSecret(name, JSON.stringify({ DATABASE_URL: url(second) }));

  const statuses: number[] = [];
  for (let i = 0; i < 4 && statuses.at(-1) !== 201; i++) statuses.push((await create()).status);
  t.equal(statuses.at(-1), 201, `served again after ${statuses.join(', ')}`);
  t.ok(
    statuses.every((status) => status === 201 || status === 503),
    'meanwhile only 503s, which say retry',
  );
  t.ok(statuses.length <= 3);
  // Log lines reach stdout within half a second.
  for (let i = 0; i < 20 && !server.output().includes('reconnected'); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  t.match(server.output(), /reconnected with the re-read ones/);
  t.equal(server.process.exitCode, null, 'still running');
});

t.test('no output of any of it holds the password', async (t) => {
  t.ok(outputs.filter((output) => output.includes(`${ROLE}:****@`)).length >= 4, "the servers' logs are all here, with the URL redacted");
  const leaked = outputs.filter((output) => passwords.some((password) => output.includes(password)));
  t.same(leaked, [], 'no database password ever appears in logs or errors');
});

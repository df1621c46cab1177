import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, environment, readConfig } from '../src/config/config.ts';
import { failedStart, messages } from './process.ts';

const LOCAL = 'postgresql://app:hunter2@db.example.com:5432/tolstoy';

t.test('defaults outside production: the embedded database, on loopback, port 3000', async (t) => {
  const config = readConfig({});
  t.match(config, {
    nodeEnv: 'development',
    appName: 'Tolstoy',
    port: 3000,
    host: '127.0.0.1',
    logLevel: 'info',
    database: undefined,
    secrets: undefined,
    ignored: [],
    preparedStatements: true,
  });
  t.equal(readConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }).preparedStatements, false);
  t.match(config.dataDir, /\.data\/postgres$/);
});

t.test('DATABASE_URL and DIRECT_URL outside AWS mode; DIRECT_URL defaults to DATABASE_URL', async (t) => {
  t.same(readConfig({ DATABASE_URL: LOCAL }).database, { url: LOCAL, directUrl: LOCAL });
  const direct = 'postgres://app:hunter2@direct.example.com/tolstoy';
  t.same(readConfig({ DATABASE_URL: LOCAL, DIRECT_URL: direct }).database, { url: LOCAL, directUrl: direct });
});

t.test('production reads the secret unless told not to, and listens on every interface', async (t) => {
  const config = readConfig({ NODE_ENV: 'production', AWS_REGION: 'eu-west-1' });
  t.same(config.secrets, { region: 'eu-west-1', secretName: 'tolstoy-db-secret', timeoutMs: 5000 });
  t.equal(config.host, '0.0.0.0');
  t.same(readConfig({ NODE_ENV: 'production', USE_AWS_SECRETS: 'false', DATABASE_URL: LOCAL }).database, { url: LOCAL, directUrl: LOCAL });
  t.throws(() => readConfig({ NODE_ENV: 'production', USE_AWS_SECRETS: 'false' }), /DATABASE_URL is required in production when USE_AWS_SECRETS is false/);
});

t.test('in AWS mode the secret is the only source of the database URLs', async (t) => {
  const config = readConfig({ USE_AWS_SECRETS: 'true', AWS_DEFAULT_REGION: 'us-west-2', AWS_SECRET_NAME: 'prod/db', DATABASE_URL: LOCAL, DIRECT_URL: LOCAL });
  t.equal(config.database, undefined);
  t.same(config.secrets, { region: 'us-west-2', secretName: 'prod/db', timeoutMs: 5000 });
  t.same(config.ignored, ['DATABASE_URL', 'DIRECT_URL']);
  t.throws(() => readConfig({ USE_AWS_SECRETS: 'yes' }), /AWS_REGION is required to read the database secret/);
});

t.test('every problem at once, in one message that repeats no value', async (t) => {
  const env = {
    NODE_ENV: 'staging',
    PORT: 'eighty',
    LOG_LEVEL: 'loud',
    APP_NAME: 'x'.repeat(101),
    USE_AWS_SECRETS: 'maybe',
    DATABASE_URL: 'mysql://root:hunter2@db/x',
    DIRECT_URL: 'not a url with hunter2',
    DATABASE_PREPARED_STATEMENTS: 'sometimes',
  };
  const error = t.throws(() => readConfig(env)) as ConfigError;
  t.type(error, ConfigError);
  t.same(error.problems, [
    'NODE_ENV must be one of development, production, test',
    'PORT must be a whole number from 0 to 65535',
    'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
    'APP_NAME must be at most 100 characters',
    'USE_AWS_SECRETS must be true or false',
    'DATABASE_PREPARED_STATEMENTS must be true or false',
    'DATABASE_URL must be a postgresql:// URL',
    'DIRECT_URL is not a URL',
  ]);
  t.notMatch(error.message, /hunter2/);
  const aws = t.throws(() => readConfig({ USE_AWS_SECRETS: 'true', AWS_REGION: 'mars', AWS_SECRETS_TIMEOUT_MS: '5' })) as ConfigError;
  t.same(aws.problems, [
    'AWS_REGION must be an AWS region such as us-east-1',
    'AWS_SECRETS_TIMEOUT_MS must be a whole number of milliseconds from 100 to 60000',
  ]);
});

t.test('every wait is bounded by default, and each bound is configurable', async (t) => {
  t.match(readConfig({}), {
    databaseTimeouts: { connectMs: 5000, statementMs: 5000, idleInTransactionMs: 10_000 },
    requestTimeoutMs: 30_000,
    shutdownTimeoutMs: 10_000,
  });
  const set = readConfig({
    DATABASE_CONNECT_TIMEOUT_MS: '2000',
    DATABASE_STATEMENT_TIMEOUT_MS: '15000',
    DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '60000',
    HTTP_REQUEST_TIMEOUT_MS: '10000',
    SHUTDOWN_TIMEOUT_MS: '25000',
  });
  t.match(set, {
    databaseTimeouts: { connectMs: 2000, statementMs: 15_000, idleInTransactionMs: 60_000 },
    requestTimeoutMs: 10_000,
    shutdownTimeoutMs: 25_000,
  });
  const error = t.throws(() => readConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '0', SHUTDOWN_TIMEOUT_MS: '1.5', HTTP_REQUEST_TIMEOUT_MS: 'soon' })) as ConfigError;
  t.same(error.problems, [
    'DATABASE_STATEMENT_TIMEOUT_MS must be a whole number of milliseconds from 100 to 600000',
    'HTTP_REQUEST_TIMEOUT_MS must be a whole number of milliseconds from 1000 to 600000',
    'SHUTDOWN_TIMEOUT_MS must be a whole number of milliseconds from 0 to 600000',
  ]);
});

t.test('events: a 10 s timeout, a schedule whose first three attempts fall within a minute, five days of failing, bounded sends', async (t) => {
  const { events } = readConfig({}).engine;
  t.same(events, {
    sendTimeoutMs: 10_000,
    retryScheduleMs: [0, 5000, 30_000, 120_000, 900_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000],
    failingLimitMs: 5 * 24 * 3_600_000,
    inFlight: 32,
    orgInFlight: 4,
  });
  t.ok(events.retryScheduleMs.slice(0, 3).reduce((sum, wait) => sum + wait, 0) < 60_000, 'the first three attempts within a minute');
  const set = readConfig({
    TOLSTOY_EVENT_TIMEOUT_MS: '500',
    TOLSTOY_EVENT_RETRY_SCHEDULE_MS: '0, 200,500',
    TOLSTOY_SUBSCRIPTION_FAILING_LIMIT_MS: '1000',
    TOLSTOY_EVENT_SENDS: '8',
    TOLSTOY_EVENT_ORG_SENDS: '2',
  }).engine.events;
  t.same(set, { sendTimeoutMs: 500, retryScheduleMs: [0, 200, 500], failingLimitMs: 1000, inFlight: 8, orgInFlight: 2 });
  const error = t.throws(() =>
    readConfig({ TOLSTOY_EVENT_RETRY_SCHEDULE_MS: '0,soon', TOLSTOY_EVENT_SENDS: '2', TOLSTOY_EVENT_ORG_SENDS: '3' }),
  ) as ConfigError;
  t.same(error.problems, [
    'TOLSTOY_EVENT_RETRY_SCHEDULE_MS must be 1 to 20 whole numbers of milliseconds from 0 to 604800000, separated by commas',
    'TOLSTOY_EVENT_ORG_SENDS must be at most TOLSTOY_EVENT_SENDS',
  ]);
});

t.test('authentication: tenant headers and open sign-up outside production, API keys and closed sign-up in it', async (t) => {
  t.same(readConfig({}).auth, { mode: 'headers', signup: true, adminToken: undefined, keyCacheMs: 5000 });
  t.same(readConfig({ NODE_ENV: 'test' }).auth.mode, 'headers');
  const production = readConfig({ NODE_ENV: 'production', USE_AWS_SECRETS: 'false', DATABASE_URL: LOCAL });
  t.same(production.auth, { mode: 'keys', signup: false, adminToken: undefined, keyCacheMs: 5000 });
  const token = 'x'.repeat(32);
  t.same(readConfig({ TOLSTOY_AUTH: 'keys', TOLSTOY_SIGNUP: 'closed', TOLSTOY_ADMIN_TOKEN: token, TOLSTOY_KEY_CACHE_MS: '0' }).auth, {
    mode: 'keys',
    signup: false,
    adminToken: token,
    keyCacheMs: 0,
  });
  const error = t.throws(() =>
    readConfig({ TOLSTOY_AUTH: 'none', TOLSTOY_SIGNUP: 'maybe', TOLSTOY_ADMIN_TOKEN: 'hunter2', TOLSTOY_KEY_CACHE_MS: '600000' }),
  ) as ConfigError;
  t.same(error.problems, [
    'TOLSTOY_AUTH must be one of keys, headers',
    'TOLSTOY_SIGNUP must be open or closed',
    'TOLSTOY_ADMIN_TOKEN must be at least 32 characters without spaces (make one with: openssl rand -base64 32)',
    'TOLSTOY_KEY_CACHE_MS must be a whole number of milliseconds from 0 to 60000',
  ]);
  t.notMatch(error.message, /hunter2/, 'the token is never repeated');
});

t.test('rate limits (on by default), CORS origins (none by default) and the public URL', async (t) => {
  t.same(readConfig({}).http, {
    rateLimits: { perKey: 1200, perOrganization: 6000, keyLookupsPerAddress: 300, signupsPerAddress: 10, webhooksPerTrigger: 600, windowMs: 60_000 },
    corsOrigins: [],
    publicUrl: undefined,
  });
  const set = readConfig({
    TOLSTOY_RATE_LIMIT_PER_KEY: '0',
    TOLSTOY_RATE_LIMIT_PER_ORG: '100',
    TOLSTOY_RATE_LIMIT_KEY_LOOKUPS_PER_ADDRESS: '20',
    TOLSTOY_RATE_LIMIT_SIGNUPS_PER_ADDRESS: '0',
    TOLSTOY_RATE_LIMIT_WEBHOOKS_PER_TRIGGER: '5',
    TOLSTOY_RATE_LIMIT_WINDOW_MS: '1000',
    TOLSTOY_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
    TOLSTOY_PUBLIC_URL: 'https://tolstoy.example.com/base/',
  }).http;
  t.same(set, {
    rateLimits: { perKey: 0, perOrganization: 100, keyLookupsPerAddress: 20, signupsPerAddress: 0, webhooksPerTrigger: 5, windowMs: 1000 },
    corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
    publicUrl: 'https://tolstoy.example.com/base',
  });
  for (const url of ['tolstoy.example.com', 'ftp://x.example.com', 'https://x.example.com/?a=1', 'https://user@x.example.com']) {
    const error = t.throws(() => readConfig({ TOLSTOY_PUBLIC_URL: url })) as ConfigError;
    t.same(error.problems, ['TOLSTOY_PUBLIC_URL must be an http or https URL such as https://tolstoy.example.com, without query or fragment'], url);
  }
  t.same(readConfig({ TOLSTOY_CORS_ORIGINS: '*' }).http.corsOrigins, ['*']);
  for (const origins of ['app.example.com', 'https://app.example.com/', 'ftp://x.example.com', 'https://a.example.com/path']) {
    const error = t.throws(() => readConfig({ TOLSTOY_CORS_ORIGINS: origins })) as ConfigError;
    t.same(error.problems, ['TOLSTOY_CORS_ORIGINS must be * or origins such as https://app.example.com, separated by commas'], origins);
  }
  const error = t.throws(() => readConfig({ TOLSTOY_RATE_LIMIT_PER_KEY: '-1', TOLSTOY_RATE_LIMIT_WINDOW_MS: '10' })) as ConfigError;
  t.same(error.problems, [
    'TOLSTOY_RATE_LIMIT_PER_KEY must be a whole number from 0 to 10000000',
    'TOLSTOY_RATE_LIMIT_WINDOW_MS must be a whole number of milliseconds from 1000 to 3600000',
  ]);
});

t.test('a .env file is read, and the environment wins over it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-env-'));
  await writeFile(join(dir, '.env'), '# comment\nPORT=4000\nAPP_NAME="Tolstoy Staging"\nLOG_LEVEL=debug\n');
  const config = readConfig(environment({ LOG_LEVEL: 'warn' }, join(dir, '.env')));
  t.match(config, { port: 4000, appName: 'Tolstoy Staging', logLevel: 'warn' });
  t.same(environment({ PORT: '1' }, join(dir, 'missing.env')), { PORT: '1' }, 'no .env, no change');
});

t.test('.env.example documents every variable the configuration reads', async (t) => {
  const source = await readFile(new URL('../src/config/config.ts', import.meta.url), 'utf8');
  const read = new Set([...source.matchAll(/(?:value|milliseconds|boolean|whole)\('([A-Z_]+)'/g)].map((m) => m[1]));
  t.ok(read.has('TOLSTOY_ADMIN_TOKEN'), 'so are those read outside readConfig');
  t.ok(read.has('SHUTDOWN_TIMEOUT_MS'), 'the variables read through a helper are found too');
  const example = await readFile(new URL('../.env.example', import.meta.url), 'utf8');
  const documented = new Set([...example.matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
  for (const name of read) t.ok(documented.has(name), `${name} is in .env.example`);
});

t.test('the server refuses an invalid configuration in one line, naming every problem', async (t) => {
  const { code, stderr } = await failedStart({ PORT: 'eighty', NODE_ENV: 'staging', DATABASE_URL: 'mysql://root:hunter2@db/x' });
  t.equal(code, 1);
  t.equal(stderr.trim().split('\n').length, 1, stderr);
  t.match(JSON.parse(stderr), { level: 60, msg: String }, 'a JSON line, at level fatal');
  t.match(
    messages(stderr),
    /^Tolstoy could not start: Invalid configuration: NODE_ENV must be one of development, production, test; PORT must be a whole number from 0 to 65535; DATABASE_URL must be a postgresql:\/\/ URL\.$/m,
  );
  t.notMatch(stderr, /hunter2/);
});

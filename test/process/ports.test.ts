// Two Tolstoys on one machine: every address in use at start-up is refused in one line that names
// the variable that moves it; outside production, the metrics' default port gives way to a free
// one; and the embedded PostgreSQL's port can be pinned with TOLSTOY_POSTGRES_PORT.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DEFAULT_METRICS_PORT } from '../../src/config/settings.ts';
import { clusterDir, freePort } from '../../src/db/embedded.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { failedStart, startServer } from '../process.ts';

// Run alone, the file starts a PostgreSQL of its own: for the whole file, not its first test.
t.before(() => freshDatabaseUrl(t));

/** Holds a port as another program would; resolves to undefined when someone else already holds it. */
async function occupy(t: Test, port: number): Promise<Server | undefined> {
  const server = createServer();
  const held = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!held) return undefined;
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return server;
}

async function takenPort(t: Test): Promise<number> {
  const port = await freePort();
  await occupy(t, port);
  return port;
}

t.test('PORT in use: the API refuses to start in one line that names PORT', async (t) => {
  const port = await takenPort(t);
  const env = { DATABASE_URL: await freshDatabaseUrl(t), PORT: String(port) };
  // failedStart chooses a free PORT; the one given here wins.
  const { code, stderr } = await failedStart(env);
  t.equal(code, 1);
  t.equal(stderr.trim().split('\n').length, 1, stderr);
  t.match(stderr, `127.0.0.1:${port}`);
  t.match(stderr, /in use/);
  t.match(stderr, /set PORT/i);
  t.notMatch(stderr, /\n\s+at /, 'no stack trace');
});

t.test('TOLSTOY_METRICS_PORT in use: refused in one line that names TOLSTOY_METRICS_PORT', async (t) => {
  const port = await takenPort(t);
  const { code, stderr } = await failedStart({ DATABASE_URL: await freshDatabaseUrl(t), TOLSTOY_METRICS_PORT: String(port) });
  t.equal(code, 1);
  t.equal(stderr.trim().split('\n').length, 1, stderr);
  t.match(stderr, `127.0.0.1:${port}`);
  t.match(stderr, /TOLSTOY_METRICS_PORT/);
});

t.test("outside production, a second Tolstoy whose metrics' default port is taken serves them on a free one and says so", async (t) => {
  // The default port is held, by this test or by whatever already holds it.
  await occupy(t, DEFAULT_METRICS_PORT);
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), TOLSTOY_METRICS_PORT: '' });
  t.teardown(() => server.process.kill('SIGKILL'));
  const moved = /metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(server.output());
  t.ok(moved, server.output());
  t.not(Number(moved?.[1]), DEFAULT_METRICS_PORT);
  t.match(server.output(), new RegExp(`Metrics port ${DEFAULT_METRICS_PORT} is in use.*TOLSTOY_METRICS_PORT`));
  t.equal((await fetch(`http://127.0.0.1:${moved?.[1]}/metrics`)).status, 200);
});

t.test('in production the default metrics port in use is refused, naming TOLSTOY_METRICS_PORT: Prometheus scrapes a fixed port', async (t) => {
  await occupy(t, DEFAULT_METRICS_PORT);
  const production = { NODE_ENV: 'production', USE_AWS_SECRETS: 'false', HOST: '127.0.0.1', TOLSTOY_ADMIN_TOKEN: randomUUID() + randomUUID() };
  const { code, stderr } = await failedStart({ ...production, DATABASE_URL: await freshDatabaseUrl(t), TOLSTOY_METRICS_PORT: '' });
  t.equal(code, 1);
  t.match(stderr, `127.0.0.1:${DEFAULT_METRICS_PORT}`);
  t.match(stderr, /TOLSTOY_METRICS_PORT/);
});

t.test('TOLSTOY_POSTGRES_PORT pins the embedded PostgreSQL; a port in use is refused naming it', async (t) => {
  const dataDir = join(tmpdir(), `tolstoy-ports-${randomUUID()}`);
  t.teardown(async () => rm(await clusterDir(dataDir), { recursive: true, force: true }));
  const embedded = { TOLSTOY_DATA_DIR: dataDir, DATABASE_URL: '', DIRECT_URL: '' };
  const port = await freePort();
  const server = await startServer({ ...embedded, TOLSTOY_POSTGRES_PORT: String(port) });
  t.match(
    server.output(),
    `Database: the embedded PostgreSQL with data in ${await clusterDir(dataDir)} (postgresql://postgres:****@127.0.0.1:${port}/tolstoy)`,
  );
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);

  const taken = await takenPort(t);
  const { code, stderr } = await failedStart({ ...embedded, TOLSTOY_POSTGRES_PORT: String(taken) });
  t.equal(code, 1);
  t.equal(stderr.trim().split('\n').length, 1, stderr);
  t.match(stderr, `127.0.0.1:${taken}`);
  t.match(stderr, /TOLSTOY_POSTGRES_PORT/);
});

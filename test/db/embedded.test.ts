// The embedded PostgreSQL's superuser password: generated for each cluster, kept private beside
// its data, never printed, and given to clusters made before passwords were generated.
import { randomUUID } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { startServer } from '../process.ts';

const newDataDir = () => join(tmpdir(), `tolstoy-password-${randomUUID()}`);

async function refuses(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.end();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

const withPassword = (url: string, password: string) => {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
};

t.test('each cluster gets its own password, readable by its owner only', async (t) => {
  const first = await startEmbeddedPostgres({ dataDir: newDataDir(), ephemeral: true });
  t.teardown(() => first.stop());
  const second = await startEmbeddedPostgres({ dataDir: newDataDir(), ephemeral: true });
  t.teardown(() => second.stop());
  const password = decodeURIComponent(new URL(first.url).password);
  t.ok(password.length >= 32, 'a long random password');
  t.not(password, decodeURIComponent(new URL(second.url).password), 'not shared between clusters');
  const file = join(first.dataDir, 'tolstoy.password');
  t.equal(await readFile(file, 'utf8'), password, 'kept beside the data');
  const info = await stat(file);
  t.equal(info.mode & 0o777, 0o600, 'readable by its owner only');
  const cluster = await stat(first.dataDir);
  t.equal(info.uid, cluster.uid, "owned by the cluster's owner (the postgres user when Tolstoy runs as root)");
  t.ok(userInfo().uid === 0 || info.uid === userInfo().uid, 'which is whoever runs Tolstoy otherwise');
  t.equal(cluster.mode & 0o077, 0, 'inside a directory no one else may enter');
  t.equal(await refuses(first.url), undefined, 'the password works');
  t.equal(await refuses(withPassword(first.url, 'postgres')), '28P01', 'the old fixed password does not');
});

t.test('a cluster from before generated passwords gets one on its next start', async (t) => {
  const dataDir = newDataDir();
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const old = await startEmbeddedPostgres({ dataDir });
  const client = new pg.Client({ connectionString: old.url });
  await client.connect();
  await client.query("ALTER ROLE postgres PASSWORD 'postgres'");
  await client.end();
  await old.stop();
  await rm(join(dataDir, 'tolstoy.password'));

  const upgraded = await startEmbeddedPostgres({ dataDir });
  t.teardown(() => upgraded.stop());
  const password = decodeURIComponent(new URL(upgraded.url).password);
  t.not(password, 'postgres');
  t.equal(await readFile(join(dataDir, 'tolstoy.password'), 'utf8'), password);
  t.equal(await refuses(withPassword(upgraded.url, 'postgres')), '28P01', 'the fixed password no longer works');
});

t.test('npm start never prints the password', async (t) => {
  const dataDir = newDataDir();
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const server = await startServer({ TOLSTOY_DATA_DIR: dataDir, DATABASE_URL: '', DIRECT_URL: '', LOG_LEVEL: 'debug' });
  await fetch(`${server.base}/ready`);
  server.process.kill('SIGTERM');
  await server.exited;
  const password = await readFile(join(dataDir, 'tolstoy.password'), 'utf8');
  t.match(server.output(), /Database: the embedded PostgreSQL/);
  t.notOk(server.output().includes(password), 'not in anything it wrote');
  t.notOk(server.output().includes(encodeURIComponent(password)));
});

// The key that encrypts tool credentials: required in production, generated in development, a
// wrong one refused at start-up in one line, and rotated with npm run credentials:rotate.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { readConfig } from '../src/config/config.ts';
import { keyFileOf, loadKeyring } from '../src/config/encryption.ts';
import { Keyring, keyId } from '../src/crypto/keyring.ts';
import { freshDatabaseUrl } from './helper.ts';
import { failedStart, messages, startServer } from './process.ts';

const newKey = () => randomBytes(32).toString('base64');
const idOf = (key: string) => keyId(Buffer.from(key, 'base64'));

/** A tool with bearer credentials, stored through a running server that uses `key`. */
async function toolSealedWith(url: string, key: string): Promise<{ toolId: string; orgId: string }> {
  const server = await startServer({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: key, TOLSTOY_WORKER: 'false' });
  const json = { 'content-type': 'application/json' };
  const org = (await (
    await fetch(`${server.base}/organizations`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'K', owner: { email: 'k@example.com' } }) })
  ).json()) as any;
  const headers = { ...json, 'x-org-id': org.id, 'x-user-id': org.owner.id };
  const tool = (await (
    await fetch(`${server.base}/tools`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'T', baseUrl: 'https://x.io', authType: 'bearer', credentials: { token: 'tok-123456' } }),
    })
  ).json()) as any;
  server.process.kill('SIGTERM');
  await server.exited;
  return { toolId: tool.id, orgId: org.id };
}

t.test('production without a key does not start', async (t) => {
  const { code, stderr } = await failedStart({
    NODE_ENV: 'production',
    USE_AWS_SECRETS: 'false',
    DATABASE_URL: await freshDatabaseUrl(t),
    TOLSTOY_ENCRYPTION_KEY: '',
  });
  t.equal(code, 1);
  t.match(
    messages(stderr),
    /^Tolstoy could not start: TOLSTOY_ENCRYPTION_KEY is required in production, to encrypt tool credentials \(make one with: openssl rand -base64 32\)\.$/,
  );
});

t.test('a key that is not 32 bytes of base64 is refused, without repeating it', async (t) => {
  const { code, stderr } = await failedStart({ TOLSTOY_ENCRYPTION_KEY: 'hunter2-not-a-key' });
  t.equal(code, 1);
  t.match(stderr, /TOLSTOY_ENCRYPTION_KEY must be the base64 of 32 bytes/);
  t.notMatch(stderr, /hunter2/);
});

t.test('a key that does not open the stored credentials is refused at start-up, in one line', async (t) => {
  const url = await freshDatabaseUrl(t);
  const first = newKey();
  await toolSealedWith(url, first);
  const other = newKey();
  const { code, stderr } = await failedStart({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: other });
  t.equal(code, 1);
  t.equal(stderr.trim().split('\n').length, 1, stderr);
  t.match(stderr, new RegExp(`encrypted with key ${idOf(first)}, but TOLSTOY_ENCRYPTION_KEY is key ${idOf(other)}`));
  t.notMatch(stderr, new RegExp(first.replaceAll('+', '\\+')), 'never the key itself');
});

t.test('rotating: the new key with the previous one starts; the script re-encrypts; then the new key alone suffices', async (t) => {
  const url = await freshDatabaseUrl(t);
  const old = newKey();
  const { toolId, orgId } = await toolSealedWith(url, old);
  const fresh = newKey();
  const during = await startServer({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: fresh, TOLSTOY_ENCRYPTION_KEY_PREVIOUS: old, TOLSTOY_WORKER: 'false' });
  during.process.kill('SIGTERM');
  t.equal(await during.exited, 0, 'starts with both keys');
  const env = { ...process.env, DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: fresh, TOLSTOY_ENCRYPTION_KEY_PREVIOUS: old };
  const { stdout } = await promisify(execFile)(process.execPath, ['scripts/rotate-credentials.ts'], { env });
  t.match(stdout, new RegExp(`Re-encrypted the credentials of 1 tool with key ${idOf(fresh)}\\.`));
  const again = await promisify(execFile)(process.execPath, ['scripts/rotate-credentials.ts'], { env });
  t.match(again.stdout, /of 0 tools/, 'nothing left to do');
  const after = await startServer({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: fresh, TOLSTOY_WORKER: 'false' });
  after.process.kill('SIGTERM');
  t.equal(await after.exited, 0, 'starts with the new key alone');
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query('SELECT credentials FROM tools WHERE id = $1', [toolId]);
  await client.end();
  t.same(
    new Keyring(Buffer.from(fresh, 'base64')).open(rows[0].credentials, { orgId, toolId }),
    { token: 'tok-123456' },
    'the same credentials, under the new key',
  );
});

t.test('outside production, a key is generated once and kept beside the embedded data', async (t) => {
  const dataDir = join(tmpdir(), `tolstoy-key-${randomUUID()}`, 'postgres');
  t.teardown(() => rm(join(dataDir, '..'), { recursive: true, force: true }));
  const config = readConfig({ TOLSTOY_DATA_DIR: dataDir });
  const first = await loadKeyring(config);
  const file = keyFileOf(config);
  t.equal(file, join(dataDir, '..', 'encryption.key'));
  t.equal((await stat(file)).mode & 0o777, 0o600);
  t.equal(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64').length, 32);
  t.equal((await loadKeyring(config)).currentId, first.currentId, 'the same key next time');
  const configured = await loadKeyring(readConfig({ TOLSTOY_DATA_DIR: dataDir, TOLSTOY_ENCRYPTION_KEY: newKey() }));
  t.not(configured.currentId, first.currentId, 'a configured key wins');
});

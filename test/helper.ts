// Shared by the tests: a fresh database per test file, cloned from a migrated template, and
// the app built on it. `npm test` starts one throwaway PostgreSQL for the whole run and passes
// it in TEST_DATABASE_URL; a test file run on its own starts its own.
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { type AuthMode, type AuthSettings, type EngineSettings, EVALUATION, EVENTS, type HttpSettings } from '../src/config/settings.ts';
import { Keyring } from '../src/crypto/keyring.ts';
import { type Database, DatabaseConnection } from '../src/db/client.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { applyMigrations } from '../src/db/migrations.ts';
import { type Engine, startEngine } from '../src/engine/engine.ts';
import { openQueue } from '../src/engine/jobs/queue.ts';
import { buildApp, DEVELOPMENT_AUTH, UNLIMITED } from '../src/http/app.ts';
import type { Services } from '../src/http/routes.ts';
import { contractViolation } from './contract.ts';

export const TEMPLATE = 'tolstoy_template';

interface Test {
  teardown(fn: () => unknown): void;
}

let ownServer: Promise<string> | undefined;

/** A PostgreSQL server for this process: the run's, or one of its own, kept until the file ends. */
async function server(): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
  ownServer ??= (async () => {
    const embedded = await startEmbeddedPostgres({ dataDir: join(tmpdir(), `tolstoy-test-${randomUUID()}`), ephemeral: true });
    await prepareTemplate(embedded.url);
    // The root test's teardown, not the first caller's: later tests of the file use it too. Loaded
    // here, so that scripts/test.ts, which imports this file, does not become a tap test itself.
    (await import('tap')).default.teardown(() => embedded.stop());
    return embedded.url;
  })();
  return ownServer;
}

/** Creates the migrated template database that every test database is cloned from. */
export async function prepareTemplate(serverUrl: string): Promise<void> {
  await withClient(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${TEMPLATE}`);
    await client.query(`CREATE DATABASE ${TEMPLATE}`);
  });
  await applyMigrations(databaseUrl(serverUrl, TEMPLATE));
  // The queue's schema too, so that every clone starts with it.
  const boss = await openQueue({ url: databaseUrl(serverUrl, TEMPLATE), working: false });
  await boss.stop({ graceful: false });
}

/** An empty, migrated database of its own, dropped when the test ends. */
export async function freshDatabaseUrl(t: Test): Promise<string> {
  const serverUrl = await server();
  const url = await cloneTemplate(serverUrl, 'test');
  t.teardown(() => withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`)));
  return url;
}

/** A new database cloned from the migrated template, named after `purpose`. */
export async function cloneTemplate(serverUrl: string, purpose: string): Promise<string> {
  const name = `${purpose}_${randomUUID().replaceAll('-', '')}`;
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`));
  return databaseUrl(serverUrl, name);
}

export async function freshDatabase(t: Test): Promise<DatabaseConnection> {
  const database = new DatabaseConnection(await freshDatabaseUrl(t));
  t.teardown(() => database.close());
  return database;
}

/** Settings of a test's engine: a worker only when asked for, local targets allowed. */
export const TEST_ENGINE: EngineSettings = {
  worker: false,
  concurrency: 10,
  orgConcurrency: 10,
  allowPrivateTargets: true,
  responseLimitBytes: 1024 * 1024,
  executionBudgetBytes: 8 * 1024 * 1024,
  resumeLimit: 3,
  orgQueueLimit: 1000,
  runTreeLimit: 10_000,
  evaluation: EVALUATION,
  events: EVENTS,
};

export interface TestEngine {
  engine: Engine;
  services: Services;
  keyring: Keyring;
}

/** A real queue (and worker, if asked for) on the test's database, stopped before the database closes. */
export async function testEngine(t: Test, database: DatabaseConnection, settings: Partial<EngineSettings> = {}): Promise<TestEngine> {
  const keyring = new Keyring(randomBytes(32));
  const directUrl = database.url;
  const engine = await startEngine({ database, directUrl, keyring, settings: { ...TEST_ENGINE, ...settings }, log: pino({ level: 'silent' }) });
  t.teardown(() => engine.stop(1000));
  return { engine, keyring, services: { keyring, runs: engine.runs } };
}

export interface TestApp extends TestEngine {
  app: FastifyInstance;
  /** The app's database, for looking behind the API. */
  db: Database;
  database: DatabaseConnection;
}

/** The operator token of test apps. */
export const ADMIN_TOKEN = 'operator-token-of-the-tests-0123456789abcdef';

/** Authentication of a test app in `mode`: open sign-up, and an operator token. */
export function testAuth(mode: AuthMode, settings: Partial<AuthSettings> = {}): AuthSettings {
  return { ...DEVELOPMENT_AUTH, mode, adminToken: ADMIN_TOKEN, ...settings };
}

const authOf = new WeakMap<FastifyInstance, AuthSettings>();

/**
 * The app on a fresh database, or on the one at `url` (shared with worker processes, say); its
 * callers say who they are with tenant headers unless `auth` says otherwise; no rate limits or
 * CORS unless `http` says otherwise.
 */
export async function buildTestApp(
  t: Test,
  settings: Partial<EngineSettings> = {},
  url?: string,
  auth = testAuth('headers'),
  http: HttpSettings = UNLIMITED,
): Promise<TestApp> {
  const database = url ? new DatabaseConnection(url) : await freshDatabase(t);
  if (url) t.teardown(() => database.close());
  const engine = await testEngine(t, database, settings);
  const app = await buildApp({ database, services: engine.services, auth, http });
  authOf.set(app, auth);
  t.teardown(() => app.close());
  return { ...engine, app, db: database.current, database };
}

export function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface Member {
  orgId: string;
  userId: string;
  /** The owner's first API key. */
  key: string;
  /** What acts as the member: the tenant headers, or in keys mode the key. */
  headers: Record<string, string>;
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** A new organization with its owner, and the headers that act as that owner. */
export async function createTenant(app: FastifyInstance, name = 'Acme'): Promise<Member> {
  const auth = authOf.get(app) ?? DEVELOPMENT_AUTH;
  const response = await app.inject({
    method: 'POST',
    url: '/organizations',
    headers: auth.signup ? {} : bearer(auth.adminToken!),
    payload: { name, owner: { email: `owner-${randomUUID()}@example.com`, name: 'Owner' } },
  });
  if (response.statusCode !== 201) throw new Error(`creating a tenant failed: ${response.body}`);
  const { id, owner, apiKey } = response.json();
  const headers = auth.mode === 'keys' ? bearer(apiKey.key) : { 'x-org-id': id, 'x-user-id': owner.id };
  return { orgId: id, userId: owner.id, key: apiKey.key, headers };
}

/** A new member of `owner`'s organization (an owner when asked), with their own key. */
export async function addMember(app: FastifyInstance, owner: Member, role: 'owner' | 'member' = 'member'): Promise<Member> {
  const email = `${role}-${randomUUID()}@example.com`;
  const user = await call(app, owner, { method: 'POST', url: '/users', payload: { email, role } });
  if (user.statusCode !== 201) throw new Error(`adding a member failed: ${user.body}`);
  const key = await call(app, owner, { method: 'POST', url: '/api-keys', payload: { name: 'Test', userId: user.data.id } });
  if (key.statusCode !== 201) throw new Error(`creating a key failed: ${key.body}`);
  const keys = (authOf.get(app) ?? DEVELOPMENT_AUTH).mode === 'keys';
  const headers = keys ? bearer(key.data.key) : { 'x-org-id': owner.orgId, 'x-user-id': user.data.id };
  return { orgId: owner.orgId, userId: user.data.id, key: key.data.key, headers };
}

/**
 * Sends a request as a member and returns the response with its JSON body parsed. A response
 * that breaks the contract (undeclared status or content type, body off its schema) throws.
 */
export async function call(app: FastifyInstance, member: Member | undefined, options: InjectOptions): Promise<LightMyRequestResponse & { data: any }> {
  const response = await app.inject({ ...options, headers: { ...member?.headers, ...options.headers } });
  const type = response.headers['content-type'] as string | undefined;
  const violation = contractViolation(String(options.method ?? 'GET'), String(options.url), response.statusCode, type, response.body);
  if (violation) throw new Error(`Contract broken by ${options.method} ${options.url}: ${violation}`);
  return Object.assign(response, { data: type?.includes('json') ? response.json() : undefined });
}

export const MISSING_ID = '01a20000-0000-7000-8000-000000000000';

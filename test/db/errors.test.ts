// The database's refusals are recognised by the constraint that refused, whether the statement
// was a model query or a raw one (Prisma reports those differently).
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import t from 'tap';
import { createDatabase, type Database } from '../../src/db/client.ts';
import { brokenForeignKey, brokenUniqueConstraint, unavailability } from '../../src/db/errors.ts';
import { ownPostgres } from '../faults/postgres.ts';
import { freshDatabase } from '../helper.ts';

const MISSING_ORG = '01a20000-0000-7000-8000-000000000001';

t.test('a broken foreign key is named, from a model query and from raw statements', async (t) => {
  const db = (await freshDatabase(t)).current;
  const refusals = [
    db.tool.create({ data: { orgId: MISSING_ORG, name: 'x', baseUrl: 'https://x.example.com' } }),
    db.$queryRaw`INSERT INTO tools (id, org_id, name, base_url, updated_at) VALUES (gen_random_uuid(), ${MISSING_ORG}::uuid, 'x', 'https://x.example.com', now()) RETURNING id`,
    db.$executeRaw`INSERT INTO tools (id, org_id, name, base_url, updated_at) VALUES (gen_random_uuid(), ${MISSING_ORG}::uuid, 'x', 'https://x.example.com', now())`,
  ];
  for (const refusal of refusals) {
    const error = await refusal.then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal(brokenForeignKey(error), 'tools_org_id_fkey');
    t.equal(brokenUniqueConstraint(error), undefined);
  }
});

t.test('a broken unique constraint is named, from a model query and from a raw statement', async (t) => {
  const db = (await freshDatabase(t)).current;
  const org = await db.organization.create({ data: { name: 'Acme' } });
  await db.user.create({ data: { orgId: org.id, email: 'a@example.com' } });
  const refusals = [
    db.user.create({ data: { orgId: org.id, email: 'a@example.com' } }),
    db.$queryRaw`INSERT INTO users (id, org_id, email, updated_at) VALUES (gen_random_uuid(), ${org.id}::uuid, 'a@example.com', now()) RETURNING id`,
  ];
  for (const refusal of refusals) {
    const error = await refusal.then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal(brokenUniqueConstraint(error), 'users_org_id_email_key');
    t.equal(brokenForeignKey(error), undefined);
  }
});

/** What a transaction whose last statement succeeded fails with when `fault` strikes before its COMMIT. */
async function failedCommit(db: Database, fault: (pid: number) => Promise<unknown>): Promise<unknown> {
  return db
    .$transaction(async (tx) => {
      const [session] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      await tx.$executeRaw`INSERT INTO organizations (id, name, updated_at) VALUES (gen_random_uuid(), 'Acme', now())`;
      await fault(session!.pid);
    })
    .then(
      () => new Error('the transaction committed'),
      (error: unknown) => error,
    );
}

// Prisma passes a failed COMMIT on as the driver adapter's own error, not as a request error.
t.test('a COMMIT that meets a lost connection is the database being unavailable (a 503), not a server fault', async (t) => {
  const database = await freshDatabase(t);
  const killer = createDatabase(database.url);
  t.teardown(() => killer.$disconnect());
  const terminated = await failedCommit(database.current, (pid) => killer.$queryRaw`SELECT pg_terminate_backend(${pid}::int)`);
  t.ok(unavailability(terminated), `its session terminated: ${String(terminated)}`);

  const postgres = await ownPostgres(t);
  const db = createDatabase(postgres.url);
  t.teardown(() => db.$disconnect());
  const killed = await failedCommit(db, async () => postgres.kill());
  t.ok(unavailability(killed), `PostgreSQL killed (kill -9): ${String(killed)}`);

  // The connection reset as the COMMIT goes out: always the adapter's ConnectionClosed.
  const proxy = await resettingProxy(new URL(database.url), 'COMMIT');
  t.teardown(() => proxy.close());
  const throughProxy = createDatabase(proxy.url);
  t.teardown(() => throughProxy.$disconnect());
  const reset = await failedCommit(throughProxy, async () => {});
  t.match(reset, { name: 'DriverAdapterError', cause: { kind: 'ConnectionClosed' } }, 'the COMMIT met a reset connection');
  t.equal(unavailability(reset), 'ConnectionClosed');
});

/** A TCP proxy to `target` that resets (RST) a client's connection instead of passing on a message containing `text`. */
async function resettingProxy(target: URL, text: string): Promise<{ url: string; close: () => void }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => (chunk.includes(text) ? client.resetAndDestroy() : upstream.write(chunk)));
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: url.toString(),
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

// PostgreSQL killed (kill -9) while requests wait in it on a lock: the driver reports "Connection
// terminated unexpectedly" with no error code; every such request must answer 503 with
// Retry-After, never 500, and the service must work again once PostgreSQL is back.
import pg from 'pg';
import t from 'tap';
import { DatabaseConnection } from '../../src/db/client.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { buildApp } from '../../src/http/app.ts';
import { call, createTenant, testEngine } from '../helper.ts';
import { ownPostgres, within } from './postgres.ts';

t.test('requests waiting in a database that is killed answer 503, and the service recovers', async (t) => {
  const postgres = await ownPostgres(t, { durable: true });
  const database = new DatabaseConnection(postgres.url, undefined, { timeouts: { connectMs: 1000, statementMs: 5000, idleInTransactionMs: 5000 } });
  t.teardown(() => database.close());
  const { services } = await testEngine(t, database);
  const app = await buildApp({ database, services });
  t.teardown(() => app.close());
  const member = await createTenant(app);
  const tool = await call(app, member, { method: 'POST', url: '/tools', payload: { name: 'Locked', baseUrl: 'https://locked.example.com' } });

  // Hold locks that the requests below wait for inside the server: reads and writes of tools,
  // and anything that reads or references the organization's row (membership checks read users,
  // which stays free, so the writes get as far as their own statements).
  const locker = new pg.Client({ connectionString: postgres.url });
  locker.on('error', () => undefined);
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE tools, organizations IN ACCESS EXCLUSIVE MODE');

  const waiting = [
    call(app, member, { method: 'GET', url: '/tools' }),
    call(app, member, { method: 'GET', url: `/tools/${tool.data.id}` }),
    call(app, member, { method: 'PUT', url: `/tools/${tool.data.id}`, payload: { name: 'Renamed' } }),
    call(app, member, { method: 'POST', url: '/users', payload: { email: 'new@example.com' } }),
    // A transaction (it locks the organization's row first): there the driver's error reached Prisma raw.
    call(app, member, { method: 'DELETE', url: `/users/${member.userId}` }),
  ];
  await waitForWaiters(postgres.url, waiting.length);
  postgres.kill();

  const answers = await within(5000, 'requests after the kill', Promise.all(waiting));
  for (const answer of answers) {
    t.equal(answer.statusCode, 503, `${answer.raw.req.method} ${answer.raw.req.url} answers 503, not 500`);
    t.equal(answer.headers['retry-after'], '1');
  }
  const meanwhile = await call(app, member, { method: 'GET', url: '/ready' });
  t.equal(meanwhile.statusCode, 503, 'not ready while the database is down');

  // The same cluster started again, on the same port: the pool reconnects by itself.
  const restarted = await startEmbeddedPostgres({ dataDir: postgres.dataDir, port: Number(new URL(postgres.url).port) });
  t.teardown(() => restarted.stop());
  const ready = await call(app, undefined, { method: 'GET', url: '/ready' });
  t.equal(ready.statusCode, 200, 'ready again');
  const list = await call(app, member, { method: 'GET', url: '/tools' });
  t.equal(list.statusCode, 200);
  t.same(
    list.data.items.map((item: { name: string }) => item.name),
    ['Locked'],
    'the update that was waiting never happened',
  );
});

/** Until `count` sessions of the server wait on a lock. */
async function waitForWaiters(url: string, count: number): Promise<void> {
  const observer = new pg.Client({ connectionString: url });
  await observer.connect();
  try {
    for (let i = 0; i < 100; i++) {
      const { rows } = await observer.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
      if (rows[0]!.n >= count) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`fewer than ${count} sessions came to wait on the lock`);
  } finally {
    await observer.end();
  }
}

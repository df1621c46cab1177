import { randomBytes } from 'node:crypto';
import { PgBoss } from 'pg-boss';
import { pino } from 'pino';
import t from 'tap';
import { Keyring } from '../../src/crypto/keyring.ts';
import { DatabaseConnection } from '../../src/db/client.ts';
import { freePort } from '../../src/db/embedded.ts';
import { RunQueue } from '../../src/engine/jobs/queue.ts';
import { RunChanges } from '../../src/engine/runs/changes.ts';
import { Runs } from '../../src/engine/runs/runs.ts';
import { buildApp } from '../../src/http/app.ts';
import { call } from '../helper.ts';

t.test('without a database, readiness and every database-backed call answer 503, never 500', async (t) => {
  const url = `postgresql://postgres:postgres@127.0.0.1:${await freePort()}/nowhere`;
  const database = new DatabaseConnection(url);
  // A queue on the same missing database, never started: nothing here reaches it.
  const boss = new PgBoss({ connectionString: url });
  const runs = new Runs(new RunQueue(boss, 1000), new RunChanges(boss, () => database.current, pino({ level: 'silent' })), {
    value: () => Promise.reject(new Error('no keys here')),
  });
  const app = await buildApp({ database, services: { keyring: new Keyring(randomBytes(32)), runs } });
  t.teardown(() => app.close());
  t.same((await call(app, undefined, { method: 'GET', url: '/health' })).data, { status: 'ok' }, 'liveness does not need the database');
  t.equal((await call(app, undefined, { method: 'GET', url: '/problems/service-unavailable' })).statusCode, 200, 'nor do the pages of problem types');
  const ready = await call(app, undefined, { method: 'GET', url: '/ready' });
  t.equal(ready.statusCode, 503);
  t.equal(ready.headers['retry-after'], '1');
  t.equal(ready.data.type, '/problems/service-unavailable');
  const list = await call(app, undefined, { method: 'GET', url: '/organizations' });
  t.equal(list.statusCode, 503);
  const scoped = await call(app, undefined, {
    method: 'GET',
    url: '/tools',
    headers: { 'x-org-id': '01a20000-0000-7000-8000-000000000000', 'x-user-id': '01a20000-0000-7000-8000-000000000000' },
  });
  t.equal(scoped.statusCode, 503);
});

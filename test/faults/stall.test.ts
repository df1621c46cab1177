// A PostgreSQL that stops answering without closing its connections (every process of it
// SIGSTOPped): readiness says so within its second, requests answer 503 with Retry-After instead
// of hanging, and everything works again once it resumes, without a restart.
import t from 'tap';
import { DatabaseConnection } from '../../src/db/client.ts';
import { buildApp } from '../../src/http/app.ts';
import { READINESS_TIMEOUT_MS } from '../../src/resources/service.ts';
import { call, createTenant, testEngine } from '../helper.ts';
import { ownPostgres, within } from './postgres.ts';

const timeouts = { connectMs: 1000, statementMs: 1000, idleInTransactionMs: 2000 };
// The longest a request may wait on a stalled database: a connection (connectMs), or the
// statement timeout and the grace after it, and a little for the machine.
const BOUND_MS = 2000 + 1000 + 1000;

t.test('a stalled database costs a prompt 503, and recovery needs no restart', async (t) => {
  const postgres = await ownPostgres(t);
  const database = new DatabaseConnection(postgres.url, undefined, { timeouts });
  t.teardown(() => database.close());
  const { services } = await testEngine(t, database);
  const app = await buildApp({ database, services });
  t.teardown(() => app.close());
  const member = await createTenant(app);
  const tool = await call(app, member, { method: 'POST', url: '/tools', payload: { name: 'Before', baseUrl: 'https://before.example.com' } });
  t.equal(tool.statusCode, 201);

  postgres.stall();
  const started = Date.now();
  const ready = await within(READINESS_TIMEOUT_MS + 1000, 'GET /ready', call(app, undefined, { method: 'GET', url: '/ready' }));
  t.equal(ready.statusCode, 503, 'readiness fails');
  t.ok(Date.now() - started < READINESS_TIMEOUT_MS + 1000, 'within about a second');

  const requests = [
    call(app, member, { method: 'GET', url: '/tools' }),
    call(app, member, { method: 'GET', url: `/tools/${tool.data.id}` }),
    call(app, member, { method: 'POST', url: '/tools', payload: { name: 'During', baseUrl: 'https://during.example.com' } }),
    call(app, member, { method: 'PUT', url: `/tools/${tool.data.id}`, payload: { name: 'During' } }),
    call(app, member, { method: 'DELETE', url: `/users/${member.userId}` }),
    call(app, undefined, { method: 'POST', url: '/organizations', payload: { name: 'During' } }),
  ];
  const answers = await within(BOUND_MS, 'requests during the stall', Promise.all(requests));
  for (const answer of answers) {
    t.equal(answer.statusCode, 503, `${answer.raw.req.method} ${answer.raw.req.url} answers 503`);
    t.equal(answer.headers['retry-after'], '1');
    t.match(answer.data, { type: '/problems/service-unavailable' });
  }

  postgres.resume();
  const after = await within(BOUND_MS, 'GET /ready after the stall', call(app, undefined, { method: 'GET', url: '/ready' }));
  t.equal(after.statusCode, 200, 'ready again');
  const list = await call(app, member, { method: 'GET', url: '/tools' });
  t.equal(list.statusCode, 200);
  // A write that reached the server before it stalled may still commit when it resumes: a 503
  // says the outcome is unknown, as any lost connection does. What was there before stays.
  t.ok(
    list.data.items.some((item: { name: string }) => item.name === 'Before'),
    'what was written before the stall is intact',
  );
  const created = await call(app, member, { method: 'POST', url: '/tools', payload: { name: 'After', baseUrl: 'https://after.example.com' } });
  t.equal(created.statusCode, 201, 'writes work again');
});

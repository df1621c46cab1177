// Attacks on the row locks of conditional writes, by a member of Globex with one ordinary API key,
// while Acme's own transaction holds one of its rows (a long write, or an attacker's aim):
// - PATCH, or PUT and DELETE with If-Match, of Acme's tool (and of Acme's organization): must
//   answer 404 at once, never lock Acme's row nor wait for Acme's lock to be released.
import pg from 'pg';
import t from 'tap';
import { buildTestApp, call, createTenant, testAuth } from '../helper.ts';

const { app, database } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const acme = await createTenant(app, 'Acme');
const globex = await createTenant(app, 'Globex');
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } })).data;

// Acme's transaction, holding its tool's and its organization's rows until the test ends.
const acmeTransaction = new pg.Client({ connectionString: database.url });
await acmeTransaction.connect();
await acmeTransaction.query('BEGIN');
await acmeTransaction.query('SELECT 1 FROM tools WHERE id = $1 FOR UPDATE', [tool.id]);
await acmeTransaction.query('SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE', [acme.orgId]);
t.teardown(() => acmeTransaction.end());

const observer = new pg.Client({ connectionString: database.url });
await observer.connect();
t.teardown(() => observer.end());

/** Whether a statement of the app waits for a lock now. */
async function someoneWaits(): Promise<boolean> {
  const { rows } = await observer.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
  return rows.length > 0;
}

/** The request's answer, or 'waits' as soon as it is seen waiting for Acme's lock. */
async function answerOrWait(request: Promise<{ statusCode: number }>): Promise<number | 'waits'> {
  let answered: number | undefined;
  const done = request.then((response) => {
    answered = response.statusCode;
  });
  while (answered === undefined) {
    if (await someoneWaits()) return 'waits';
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 20))]);
  }
  return answered;
}

const writes = [
  { method: 'PATCH', url: `/tools/${tool.id}`, payload: { name: 'Mine' }, headers: { 'content-type': 'application/merge-patch+json' } },
  { method: 'PUT', url: `/tools/${tool.id}`, payload: { name: 'Mine' }, headers: { 'if-match': '*' } },
  { method: 'DELETE', url: `/tools/${tool.id}`, headers: { 'if-match': '*' } },
  { method: 'PATCH', url: `/organizations/${acme.orgId}`, payload: { name: 'Mine' }, headers: { 'content-type': 'application/merge-patch+json' } },
  { method: 'DELETE', url: `/organizations/${acme.orgId}`, headers: { 'if-match': '*' } },
] as const;

for (const write of writes) {
  t.test(`${write.method} ${write.url} of another organization answers 404 without waiting for its lock`, async (t) => {
    t.equal(await answerOrWait(call(app, globex, { ...write })), 404);
  });
}

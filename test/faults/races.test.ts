// Races between requests that each pass their own checks: the database's constraints decide,
// and every refusal must be a clear 409 or 422, never a 5xx.

import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildTestApp, call, createTenant, type Member } from '../helper.ts';

const ALLOWED = new Set([200, 201, 204, 403, 404, 409, 422]);

// A create that passed the membership check while its organization was being deleted: made
// certain here by a trigger (test scaffolding in this test's own database) that holds the insert
// until the deletion has committed.
for (const [table, path, body] of [
  ['users', '/users', { email: 'late@example.com' }],
  ['tools', '/tools', { name: 'Late', baseUrl: 'https://late.example.com' }],
  ['flows', '/flows', { name: 'Late' }],
] as const) {
  t.test(`a ${table} create racing its organization's deletion answers 409`, async (t) => {
    const { app, db } = await buildTestApp(t);
    const member = await createTenant(app);
    const url = (await db.$queryRaw<{ url: string }[]>`SELECT current_database() AS url`)[0]!.url;
    await db.$executeRawUnsafe(`
      CREATE FUNCTION hold_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
      `);
    await db.$executeRawUnsafe(`CREATE TRIGGER hold BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION hold_insert()`);
    const creating = call(app, member, { method: 'POST', url: path, payload: body });
    await untilSleeping(db, url);
    const deleted = await call(app, undefined, { method: 'DELETE', url: `/organizations/${member.orgId}` });
    t.equal(deleted.statusCode, 204, 'the organization is deleted while the create waits');
    const created = await creating;
    t.equal(created.statusCode, 409);
    t.match(created.data, { type: '/problems/conflict', detail: 'The organization was deleted while this request was being handled.' });
  });
}

async function untilSleeping(db: { $queryRaw: (query: TemplateStringsArray, ...values: unknown[]) => Promise<unknown> }, database: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const rows =
      (await db.$queryRaw`SELECT 1 FROM pg_stat_activity WHERE datname = ${database} AND ltrim(query, E' \n') LIKE 'INSERT%' AND wait_event = 'PgSleep'`) as unknown[];
    if (rows.length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the create never reached its insert');
}

// Many conflicting requests at once, over and over: whatever interleaving the machine produces,
// no answer is a 5xx, and every status is one the contract declares for the operation.
t.test('conflicting requests at once never answer 5xx', async (t) => {
  const { app } = await buildTestApp(t);
  const statuses = new Map<string, number>();
  const see = (label: string, status: number) => {
    statuses.set(`${label} ${status}`, (statuses.get(`${label} ${status}`) ?? 0) + 1);
    if (!ALLOWED.has(status)) t.fail(`${label} answered ${status}`);
  };
  for (let round = 0; round < 8; round++) {
    const member = await createTenant(app, `Race ${round}`);
    await Promise.all([deleteVersusCreate(app, member, see), flowUpdates(app, member, see), referenceRaces(app, member, see)]);
  }
  t.ok(statuses.size > 0);
  t.comment([...statuses].map(([key, count]) => `${key}: ${count}`).join(', '));
});

type See = (label: string, status: number) => void;

async function send(app: FastifyInstance, member: Member | undefined, see: See, label: string, options: Parameters<typeof call>[2]) {
  const response = await call(app, member, options);
  see(label, response.statusCode);
  return response;
}

// Members and tools created while the organization is deleted.
async function deleteVersusCreate(app: FastifyInstance, _member: Member, see: See): Promise<void> {
  const victim = await createTenant(app, 'Victim');
  await Promise.all([
    send(app, victim, see, 'createUser', { method: 'POST', url: '/users', payload: { email: 'a@example.com' } }),
    send(app, victim, see, 'createTool', { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: 'https://t.example.com' } }),
    send(app, victim, see, 'createFlow', { method: 'POST', url: '/flows', payload: { name: 'F' } }),
    send(app, undefined, see, 'deleteOrganization', { method: 'DELETE', url: `/organizations/${victim.orgId}` }),
    send(app, victim, see, 'createUser', { method: 'POST', url: '/users', payload: { email: 'b@example.com' } }),
  ]);
}

// The same flow's steps replaced by several writers at once.
async function flowUpdates(app: FastifyInstance, member: Member, see: See): Promise<void> {
  const tool = await send(app, member, see, 'createTool', { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: 'https://t.example.com' } });
  const action = await send(app, member, see, 'createAction', {
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'A', key: `a-${tool.data.id}`, method: 'GET', endpoint: '/a' },
  });
  const flow = await send(app, member, see, 'createFlow', {
    method: 'POST',
    url: '/flows',
    payload: { name: 'F', steps: [{ key: 'one', actionId: action.data.id }] },
  });
  const steps = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `s${i}`, actionId: action.data.id }));
  await Promise.all(
    [1, 2, 3, 4, 5].map((n) => send(app, member, see, 'updateFlow', { method: 'PUT', url: `/flows/${flow.data.id}`, payload: { steps: steps(n) } })),
  );
  const final = await send(app, member, see, 'getFlow', { method: 'GET', url: `/flows/${flow.data.id}` });
  if (final.data.version !== 6) see(`updateFlow lost an update (version ${final.data.version})`, 500);
}

// References created while what they reference is deleted.
async function referenceRaces(app: FastifyInstance, member: Member, see: See): Promise<void> {
  const tool = await send(app, member, see, 'createTool', { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: 'https://t.example.com' } });
  const [action] = await Promise.all([
    send(app, member, see, 'createAction', {
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.data.id, name: 'A', key: `r-${tool.data.id}`, method: 'GET', endpoint: '/a' },
    }),
    send(app, member, see, 'deleteTool', { method: 'DELETE', url: `/tools/${tool.data.id}` }),
  ]);
  if (action.statusCode === 201) {
    await Promise.all([
      send(app, member, see, 'createFlow', { method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'x', actionId: action.data.id }] } }),
      send(app, member, see, 'deleteAction', { method: 'DELETE', url: `/actions/${action.data.id}` }),
    ]);
  }
  const other = await send(app, member, see, 'createUser', { method: 'POST', url: '/users', payload: { email: `o-${tool.data.id}@example.com` } });
  const flow = await send(app, member, see, 'createFlow', { method: 'POST', url: '/flows', payload: { name: 'Logged' } });
  await Promise.all([
    // A log is written by its caller: the other member writes it, while being removed.
    send(app, { ...member, headers: { ...member.headers, 'x-user-id': other.data.id } }, see, 'createExecutionLog', {
      method: 'POST',
      url: '/execution-logs',
      payload: { flowId: flow.data.id, executionId: 'e', stepKey: 's', status: 'completed' },
    }),
    send(app, member, see, 'deleteUser', { method: 'DELETE', url: `/users/${other.data.id}` }),
    send(app, member, see, 'createUser', { method: 'POST', url: '/users', payload: { email: `o-${tool.data.id}@example.com` } }),
    send(app, member, see, 'updateUser', { method: 'PUT', url: `/users/${member.userId}`, payload: { email: `o-${tool.data.id}@example.com` } }),
  ]);
}

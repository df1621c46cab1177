// What one tenant, or anyone who knows a webhook's address, can do to triggers and to others:
// a schedule whose slots cannot start skips them and holds no one up; one organization's many
// schedules delay no other's; bodies, guesses and races get clear answers; what is kept of a
// delivery holds no credentials.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { loggedUrl } from '../../src/http/accessLog.ts';
import { UNLIMITED } from '../../src/http/app.ts';
import { FORM_FIELDS } from '../../src/triggers/intake.ts';
import { world } from '../engine/world.ts';
import { buildTestApp, call, createTenant, testAuth } from '../helper.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const patch = { 'content-type': 'application/merge-patch+json' };

/** A schedule of `member`'s flow, every second, its runs allowed to overlap. */
async function everySecond(app: Parameters<typeof call>[0], member: Parameters<typeof call>[1], flowId: string) {
  const payload = { flowId, name: 'Tick', type: 'schedule', schedule: { cron: '* * * * * *', overlap: 'allow' } };
  return (await call(app, member, { method: 'POST', url: '/triggers', payload })).data;
}

t.test("a schedule whose runs cannot be queued skips its slots, and holds up no other organization's", async (t) => {
  // One run of an organization at a time, two queued at most: a hanging run, then as many as fit.
  const w = await world(t, { orgQueueLimit: 2, orgConcurrency: 1, concurrency: 4 });
  const hang = await w.action({ endpoint: '/hang/forever', method: 'GET' });
  const stuck = await w.flow({ steps: [{ key: 'hang', actionId: hang, timeoutMs: 60_000 }] });
  const start = () => w.send({ method: 'POST', url: `/flows/${stuck.id}/executions`, payload: {} });
  await start();
  while ((await w.db.execution.count({ where: { flowId: stuck.id, status: 'running' } })) === 0) await sleep(20);
  while ((await start()).statusCode !== 429) {}
  const full = (
    await w.send({
      method: 'POST',
      url: '/triggers',
      payload: { flowId: stuck.id, name: 'Full', type: 'schedule', schedule: { cron: '* * * * * *', overlap: 'allow' } },
    })
  ).data;
  const other = await createTenant(w.app, 'Other');
  const tool = (await call(w.app, other, { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: w.target.url } })).data;
  const action = (
    await call(w.app, other, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'E', key: 'e', method: 'POST', endpoint: '/echo/e' } })
  ).data;
  const flow = (await call(w.app, other, { method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'e', actionId: action.id }] } })).data;
  const theirs = await everySecond(w.app, other, flow.id);
  await sleep(3300);
  const skipped = (await w.send({ method: 'GET', url: `/triggers/${full.id}/deliveries` })).data.items;
  t.ok(skipped.length >= 2, `the full organization's slots are reached (${skipped.length})`);
  t.ok(
    skipped.every((d: any) => d.outcome === 'skipped' && /queued/.test(d.reason)),
    'and skipped, saying why',
  );
  const started = (await call(w.app, other, { method: 'GET', url: `/triggers/${theirs.id}/deliveries` })).data.items;
  t.ok(started.length >= 3 && started.every((d: any) => d.outcome === 'started'), `the other organization's slots start (${started.length})`);
  const next = (await w.send({ method: 'GET', url: `/triggers/${full.id}` })).data.schedule.nextFireAt;
  t.ok(Date.parse(next) > Date.now() - 2000, 'the full one moves on to its next slot');
});

t.test("many schedules of one organization delay no slot of another's", async (t) => {
  const w = await world(t, { concurrency: 20 });
  const echo = await w.action();
  const flow = await w.flow({ steps: [{ key: 'e', actionId: echo }] });
  await Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      w.send({
        method: 'POST',
        url: '/triggers',
        payload: { flowId: flow.id, name: `Many ${i}`, type: 'schedule', schedule: { cron: '* * * * * *', overlap: 'allow' } },
      }),
    ),
  );
  const other = await createTenant(w.app, 'Other');
  const otherFlow = (await call(w.app, other, { method: 'POST', url: '/flows', payload: { name: 'Nothing' } })).data;
  const theirs = await everySecond(w.app, other, otherFlow.id);
  await sleep(4300);
  await call(w.app, other, { method: 'PATCH', url: `/triggers/${theirs.id}`, payload: { enabled: false }, headers: patch });
  const slots = (await call(w.app, other, { method: 'GET', url: `/triggers/${theirs.id}/deliveries` })).data.items
    .map((d: any) => Date.parse(d.scheduledAt))
    .sort();
  t.ok(slots.length >= 3, `its slots fired (${slots.length})`);
  for (const [i, slot] of slots.entries()) if (i > 0) t.equal(slot - slots[i - 1], 1000, 'none was skipped');
  const many = await w.db.trigger.findMany({ where: { orgId: w.member.orgId }, select: { id: true } });
  await w.db.trigger.updateMany({ where: { id: { in: many.map((m) => m.id) } }, data: { enabled: false, nextFireAt: null } });
});

t.test('an organization has at most 100 triggers', async (t) => {
  const w = await world(t);
  const flow = await w.flow({ steps: [] });
  await w.db.trigger.createMany({
    data: Array.from({ length: 100 }, (_, i) => ({
      id: randomUUID(),
      orgId: w.member.orgId,
      flowId: flow.id,
      name: `T${i}`,
      type: 'webhook' as const,
      settings: '{}',
      hookToken: `wh_${randomUUID()}`,
    })),
  });
  const refused = await w.send({ method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'One more', type: 'webhook' } });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /100 triggers, the most it may have/);
});

t.test('webhook bodies, races and what is kept', async (t) => {
  const w = await world(t);
  const flow = await w.flow({ steps: [] });
  const create = async (webhook: object = {}) =>
    (await w.send({ method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'H', type: 'webhook', webhook } })).data;
  const deliver = (token: string, payload: string, headers: Record<string, string> = {}) =>
    call(w.app, undefined, { method: 'POST', url: `/hooks/${token}`, payload, headers: { 'content-type': 'application/json', ...headers } });

  const hook = await create();
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const many = await deliver(hook.webhook.token, 'a&'.repeat(FORM_FIELDS + 1), form);
  t.equal(many.statusCode, 400, 'a form of too many fields is refused');
  t.match(many.data.detail, new RegExp(`more than ${FORM_FIELDS} fields`));
  const repeated = await deliver(hook.webhook.token, 'a=1&'.repeat(FORM_FIELDS), form);
  t.equal(repeated.statusCode, 202, `${FORM_FIELDS} repeats of one field are taken`);

  const signed = await create({ signature: { scheme: 'hmac-sha256', secret: 'kept-out-secret' } });
  const headers = { 'x-signature': 'forged', authorization: 'Bearer sender-credential', cookie: 'session=s' };
  t.equal((await deliver(signed.webhook.token, '{}', headers)).statusCode, 401);
  const plain = await deliver(hook.webhook.token, '{}', headers);
  const kept = (await w.send({ method: 'GET', url: `/triggers/${signed.id}/deliveries` })).data.items[0].headers;
  for (const name of ['x-signature', 'authorization', 'cookie']) t.notOk(name in kept, `a rejected delivery keeps no ${name}`);
  const run = await w.finished(plain.data.executionId);
  t.notOk('authorization' in run.input.headers || 'cookie' in run.input.headers, "a run's input holds no credentials");

  const once = await create({ dedupe: { header: 'X-Id' } });
  const big = JSON.stringify({ pad: 'x'.repeat(100_000) });
  await deliver(once.webhook.token, big, { 'x-id': 'same' });
  await deliver(once.webhook.token, big, { 'x-id': 'same' });
  const stored = await w.db.triggerDelivery.findMany({ where: { triggerId: once.id }, orderBy: { id: 'asc' } });
  t.same(
    stored.map((d) => [d.outcome, d.body === null]),
    [
      ['accepted', false],
      ['duplicate', true],
    ],
    "a duplicate's body is not kept again",
  );

  const standard = await w.send({
    method: 'POST',
    url: '/triggers',
    payload: { flowId: flow.id, name: 'S', type: 'webhook', webhook: { signature: { scheme: 'standard-webhooks' }, dedupe: { header: 'X-Event' } } },
  });
  t.equal(standard.statusCode, 422, 'standard-webhooks de-duplicates by its signed webhook-id only');
  t.equal(standard.data.errors[0].pointer, '/webhook/dedupe');

  const doomed = await create();
  const [answers] = await Promise.all([
    Promise.all(Array.from({ length: 20 }, () => deliver(doomed.webhook.token, '{}'))),
    w.send({ method: 'DELETE', url: `/triggers/${doomed.id}` }),
  ]);
  t.ok(
    answers.every((a) => a.statusCode === 202 || a.statusCode === 404),
    `a delivery racing the delete is taken or answered 404 (${[...new Set(answers.map((a) => a.statusCode))]})`,
  );

  t.equal(loggedUrl(`/hooks/${hook.webhook.token}?a=1`), '/hooks/wh_…?a=1', 'the access log keeps no token');
  t.equal(loggedUrl('/triggers/x'), '/triggers/x');
});

t.test('an address that keeps guessing webhook addresses is refused for a while', async (t) => {
  const http = { ...UNLIMITED, rateLimits: { ...UNLIMITED.rateLimits, keyLookupsPerAddress: 5, webhooksPerTrigger: 3 } };
  const { app } = await buildTestApp(t, {}, undefined, testAuth('headers'), http);
  const member = await createTenant(app);
  const flow = (await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'F' } })).data;
  const hook = (await call(app, member, { method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'H', type: 'webhook' } })).data;
  const deliver = (token: string) =>
    call(app, undefined, { method: 'POST', url: `/hooks/${token}`, payload: '{}', headers: { 'content-type': 'application/json' } });
  const guesses = [];
  for (let i = 0; i < 7; i++) guesses.push((await deliver(`wh_${'A'.repeat(42)}${i}`)).statusCode);
  t.same(guesses, [404, 404, 404, 404, 404, 429, 429]);
  t.equal((await deliver(hook.webhook.token)).statusCode, 429, 'even to a real one, from that address');
});

t.test('deliveries to one webhook are limited per trigger', async (t) => {
  const http = { ...UNLIMITED, rateLimits: { ...UNLIMITED.rateLimits, webhooksPerTrigger: 3 } };
  const { app } = await buildTestApp(t, {}, undefined, testAuth('headers'), http);
  const member = await createTenant(app);
  const flow = (await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'F' } })).data;
  const hook = (await call(app, member, { method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'H', type: 'webhook' } })).data;
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    statuses.push(
      (await call(app, undefined, { method: 'POST', url: `/hooks/${hook.webhook.token}`, payload: '{}', headers: { 'content-type': 'application/json' } }))
        .statusCode,
    );
  }
  t.same(statuses, [202, 202, 202, 429]);
});

t.test('a trigger created while its flow is deleted is refused, or deleted with the flow', async (t) => {
  const w = await world(t);
  for (let i = 0; i < 15; i++) {
    const flow = await w.flow({ steps: [] });
    const [created] = await Promise.all([
      w.send({ method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'Racing', type: 'schedule', schedule: { cron: '* * * * * *' } } }),
      w.send({ method: 'DELETE', url: `/flows/${flow.id}` }),
    ]);
    t.ok([201, 422].includes(created.statusCode), `${created.statusCode}`);
    t.equal(await w.db.trigger.count({ where: { flowId: flow.id } }), 0, 'no trigger outlives its flow');
  }
});

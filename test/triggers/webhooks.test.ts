// Webhook triggers end to end, on a real database with a worker: a delivery runs the flow with
// its body, query and headers; signatures are checked over the raw body; duplicates start
// nothing, also when sent at once; `respond: output` answers the run's output.
import { createHmac } from 'node:crypto';
import t from 'tap';
import { world } from '../engine/world.ts';
import { call, createTenant, MISSING_ID } from '../helper.ts';

const w = await world(t, { concurrency: 4 });
const echo = await w.action({ endpoint: '/echo/hook' });
const flow = await w.flow({
  steps: [{ key: 'notify', actionId: echo, inputs: { got: { $eval: 'input' }, trigger: { $eval: 'trigger' } } }],
  output: { body: { $eval: 'input.body' }, type: { $eval: 'trigger.type' } },
});

async function trigger(webhook: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const created = await w.send({ method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'Hook', type: 'webhook', webhook, ...extra } });
  if (created.statusCode !== 201) throw new Error(`creating a trigger failed: ${created.body}`);
  return created.data;
}

/** POSTs raw bytes to the trigger's hook, as a sender would (no API key). */
function deliver(hook: { token: string }, body: string | Buffer, headers: Record<string, string> = {}, query = '') {
  return call(w.app, undefined, {
    method: 'POST',
    url: `/hooks/${hook.token}${query}`,
    payload: body,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

async function deliveries(triggerId: string) {
  return (await w.send({ method: 'GET', url: `/triggers/${triggerId}/deliveries?limit=100` })).data.items;
}

t.test('a delivery runs the flow with its body, query and headers; the run records its trigger', async (t) => {
  const hook = await trigger();
  t.match(hook.webhook.url, new RegExp(`^http://localhost(:\\d+)?/hooks/${hook.webhook.token}$`));
  t.match(hook.webhook.token, /^wh_[A-Za-z0-9_-]{43}$/);
  const answer = await deliver(hook.webhook, JSON.stringify({ ref: 'main', n: 1 }), { 'X-GitHub-Event': 'push' }, '?source=gh&tag=a&tag=b');
  t.equal(answer.statusCode, 202);
  const run = await w.finished(answer.data.executionId);
  t.equal(run.status, 'completed');
  t.same(run.trigger, { type: 'webhook', id: hook.id, deliveryId: answer.data.deliveryId });
  t.equal(run.createdBy, null);
  t.same(run.input.body, { ref: 'main', n: 1 });
  t.same(run.input.query, { source: 'gh', tag: ['a', 'b'] });
  t.equal(run.input.headers['x-github-event'], 'push', 'header names in lower case');
  t.same(run.output, { body: { ref: 'main', n: 1 }, type: 'webhook' });
  const sent = w.target.received.find((r) => r.headers['idempotency-key'] === `${run.id}:notify`)!;
  t.same((sent.body as any).trigger, run.trigger, 'templates see the trigger');
  const [listed] = await deliveries(hook.id);
  t.match(listed, { id: answer.data.deliveryId, outcome: 'accepted', executionId: run.id, body: { ref: 'main', n: 1 }, query: { source: 'gh' } });
});

t.test('form and text bodies; an empty body is null', async (t) => {
  const hook = await trigger();
  const form = await deliver(hook.webhook, 'a=1&b=two&a=3&__proto__=x', { 'content-type': 'application/x-www-form-urlencoded' });
  // Parsed from JSON: a literal's __proto__ would set its prototype, not a field.
  t.same((await w.finished(form.data.executionId)).input.body, JSON.parse('{"a":["1","3"],"b":"two","__proto__":"x"}'));
  const text = await deliver(hook.webhook, '<xml>hi</xml>', { 'content-type': 'application/xml' });
  t.equal((await w.finished(text.data.executionId)).input.body, '<xml>hi</xml>');
  const none = await call(w.app, undefined, { method: 'POST', url: `/hooks/${hook.webhook.token}` });
  t.equal(none.statusCode, 202);
  t.equal((await w.finished(none.data.executionId)).input.body, null);
  const bad = await deliver(hook.webhook, '{"not json');
  t.equal(bad.statusCode, 400);
  t.match((await deliveries(hook.id))[0], { outcome: 'rejected', reason: /not valid JSON/, executionId: null });
});

t.test('hmac-sha256: a valid signature runs; a tampered body or signature gets 401 and runs nothing', async (t) => {
  const hook = await trigger({ signature: { scheme: 'hmac-sha256', header: 'X-Hub-Signature-256', prefix: 'sha256=' } });
  const secret = hook.webhook.signature.secret as string;
  t.match(secret, /^[0-9a-f]{64}$/, 'a secret is made and shown once');
  t.notOk('secret' in (await w.send({ method: 'GET', url: `/triggers/${hook.id}` })).data.webhook.signature, 'and never again');
  const body = JSON.stringify({ action: 'opened' });
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const good = await deliver(hook.webhook, body, { 'x-hub-signature-256': signature });
  t.equal(good.statusCode, 202);
  const run = await w.finished(good.data.executionId);
  t.notOk('x-hub-signature-256' in run.input.headers, 'the signature header is dropped from the input');
  const runsBefore = await w.db.execution.count({ where: { triggerId: hook.id } });
  const tampered = await deliver(hook.webhook, body.replace('opened', 'closed'), { 'x-hub-signature-256': signature });
  t.equal(tampered.statusCode, 401);
  t.equal(tampered.data.type, '/problems/bad-signature');
  t.notOk(tampered.headers['www-authenticate']);
  const missing = await deliver(hook.webhook, body);
  t.equal(missing.statusCode, 401);
  t.match(missing.data.detail, /X-Hub-Signature-256/i);
  t.equal(await w.db.execution.count({ where: { triggerId: hook.id } }), runsBefore, 'nothing ran');
  const [last, before] = await deliveries(hook.id);
  t.match(last, { outcome: 'rejected', executionId: null, reason: /header/ });
  t.match(before, { outcome: 'rejected', body: body.replace('opened', 'closed') });
  t.notMatch(JSON.stringify(await deliveries(hook.id)), secret, 'the secret is in no delivery');
});

t.test('a secret given is used; base64 digests', async (t) => {
  const hook = await trigger({ signature: { scheme: 'hmac-sha256', header: 'X-Shopify-Hmac-Sha256', encoding: 'base64', secret: 'shpss_0123456789' } });
  t.equal(hook.webhook.signature.secret, 'shpss_0123456789');
  const body = '{"id":1}';
  const good = await deliver(hook.webhook, body, { 'x-shopify-hmac-sha256': createHmac('sha256', 'shpss_0123456789').update(body).digest('base64') });
  t.equal(good.statusCode, 202);
});

t.test('standard-webhooks: a valid signature runs once per webhook-id; a stale timestamp is refused', async (t) => {
  const hook = await trigger({ signature: { scheme: 'standard-webhooks' } });
  const secret = hook.webhook.signature.secret as string;
  t.match(secret, /^whsec_/);
  const sign = (id: string, timestamp: number, body: string) =>
    `v1,${createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
      .update(`${id}.${timestamp}.${body}`)
      .digest('base64')}`;
  const body = '{"type":"invoice.paid"}';
  const now = Math.floor(Date.now() / 1000);
  const headers = (id: string, at: number) => ({ 'webhook-id': id, 'webhook-timestamp': String(at), 'webhook-signature': sign(id, at, body) });
  const first = await deliver(hook.webhook, body, headers('msg_1', now));
  t.equal(first.statusCode, 202);
  const again = await deliver(hook.webhook, body, headers('msg_1', now));
  t.equal(again.statusCode, 202);
  t.same(again.data, first.data, 'a repeated webhook-id answers what the first did');
  const stale = await deliver(hook.webhook, body, headers('msg_2', now - 600));
  t.equal(stale.statusCode, 401);
  t.match(stale.data.detail, /webhook-timestamp/);
  t.equal(await w.db.execution.count({ where: { triggerId: hook.id } }), 1);
});

t.test('duplicates sent at the same moment start one run; every request is listed', async (t) => {
  const hook = await trigger({ dedupe: { header: 'X-GitHub-Delivery' } });
  const answers = await Promise.all(
    Array.from({ length: 12 }, () => deliver(hook.webhook, '{"same":true}', { 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' })),
  );
  t.same(new Set(answers.map((a) => a.statusCode)), new Set([202]));
  t.equal(new Set(answers.map((a) => a.data.executionId)).size, 1, 'one run');
  t.equal(await w.db.execution.count({ where: { triggerId: hook.id } }), 1);
  const listed = await deliveries(hook.id);
  t.equal(listed.length, 12);
  t.equal(listed.filter((d: any) => d.outcome === 'accepted').length, 1);
  t.ok(listed.filter((d: any) => d.outcome === 'duplicate').every((d: any) => d.duplicateOf === answers[0]!.data.deliveryId));
  const other = await deliver(hook.webhook, '{"same":false}', { 'x-github-delivery': 'another' });
  t.not(other.data.executionId, answers[0]!.data.executionId, 'another id runs');
});

t.test('respond: output answers the output, or 502 when the run fails', async (t) => {
  const hook = await trigger({ respond: 'output' });
  const answer = await deliver(hook.webhook, '{"x":1}');
  t.equal(answer.statusCode, 200);
  t.same(answer.data, { body: { x: 1 }, type: 'webhook' });
  const failing = await w.action({ endpoint: '/status/500' });
  const broken = await w.flow({ steps: [{ key: 'boom', actionId: failing }] });
  const created = await w.send({
    method: 'POST',
    url: '/triggers',
    payload: { flowId: broken.id, name: 'Boom', type: 'webhook', webhook: { respond: 'output' } },
  });
  const failed = await deliver(created.data.webhook, '{}');
  t.equal(failed.statusCode, 502);
  t.equal(failed.data.type, '/problems/run-failed');
});

t.test('a disabled, deleted or unknown hook answers 404 alike', async (t) => {
  const hook = await trigger();
  const unknown = await deliver({ token: `wh_${'A'.repeat(43)}` }, '{}');
  t.equal(unknown.statusCode, 404);
  await w.send({ method: 'PATCH', url: `/triggers/${hook.id}`, payload: { enabled: false }, headers: { 'content-type': 'application/merge-patch+json' } });
  const disabled = await deliver(hook.webhook, '{}');
  t.equal(disabled.statusCode, 404);
  t.same(disabled.data.detail, unknown.data.detail);
  t.equal((await deliveries(hook.id)).length, 0, 'nothing is listed');
  await w.send({ method: 'DELETE', url: `/triggers/${hook.id}` });
  t.equal((await deliver(hook.webhook, '{}')).statusCode, 404);
});

t.test('replaying a delivery starts a new run with its input; a rejected one is refused', async (t) => {
  const hook = await trigger({ signature: { scheme: 'hmac-sha256', secret: 'replay-secret' } });
  const body = '{"n":7}';
  const first = await deliver(hook.webhook, body, { 'x-signature': createHmac('sha256', 'replay-secret').update(body).digest('hex') });
  await w.finished(first.data.executionId);
  const replayed = await w.send({ method: 'POST', url: `/triggers/${hook.id}/deliveries/${first.data.deliveryId}/replay` });
  t.equal(replayed.statusCode, 202);
  const run = await w.finished(replayed.data.executionId);
  t.same(run.input.body, { n: 7 });
  t.same(run.trigger, { type: 'webhook', id: hook.id, deliveryId: first.data.deliveryId, replay: true, userId: w.member.userId });
  await deliver(hook.webhook, body, { 'x-signature': 'wrong' });
  const rejected = (await deliveries(hook.id)).find((d: any) => d.outcome === 'rejected');
  const refused = await w.send({ method: 'POST', url: `/triggers/${hook.id}/deliveries/${rejected.id}/replay` });
  t.equal(refused.statusCode, 409);
  t.equal((await w.send({ method: 'POST', url: `/triggers/${hook.id}/deliveries/${MISSING_ID}/replay` })).statusCode, 404);
});

t.test('another organization sees none of a trigger, its deliveries or its replays', async (t) => {
  const hook = await trigger();
  const other = await createTenant(w.app, 'Other');
  for (const url of [`/triggers/${hook.id}`, `/triggers/${hook.id}/deliveries`])
    t.equal((await call(w.app, other, { method: 'GET', url })).statusCode, 404, url);
  t.equal((await call(w.app, other, { method: 'GET', url: '/triggers' })).data.items.length, 0);
  t.equal(
    (
      await call(w.app, other, {
        method: 'PATCH',
        url: `/triggers/${hook.id}`,
        payload: { name: 'x' },
        headers: { 'content-type': 'application/merge-patch+json' },
      })
    ).statusCode,
    404,
  );
});

t.test('a replayed create answers the trigger without its secret, which is shown once', async (t) => {
  const headers = { 'idempotency-key': 'create-signed-hook' };
  const payload = { flowId: flow.id, name: 'Signed', type: 'webhook', webhook: { signature: { scheme: 'standard-webhooks' } } };
  const first = await w.send({ method: 'POST', url: '/triggers', payload, headers });
  t.match(first.data.webhook.signature.secret, /^whsec_/);
  const again = await w.send({ method: 'POST', url: '/triggers', payload, headers });
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.data.id, first.data.id);
  t.notOk('secret' in again.data.webhook.signature);
  const stored = await w.db.idempotencyKey.findMany({ where: { orgId: w.member.orgId } });
  t.notMatch(JSON.stringify(stored), first.data.webhook.signature.secret.slice(6), 'the secret is not kept with the key');
});

t.test('a secret this node cannot open answers 503, for the sender to retry, and runs nothing', async (t) => {
  const hook = await trigger({ signature: { scheme: 'hmac-sha256', secret: 'rotated-away' } });
  const sealed = (await w.db.trigger.findUniqueOrThrow({ where: { id: hook.id } })).secret!;
  // Sealed under a key this process does not have, as after a rotation that forgot it.
  await w.db.trigger.update({ where: { id: hook.id }, data: { secret: sealed.replace(/^v1\.[0-9a-f]{8}\./, 'v1.00000000.') } });
  const answer = await deliver(hook.webhook, '{}', { 'x-signature': createHmac('sha256', 'rotated-away').update('{}').digest('hex') });
  t.equal(answer.statusCode, 503);
  t.equal(answer.headers['retry-after'], '60');
  t.equal(await w.db.execution.count({ where: { triggerId: hook.id } }), 0);
});

// `trigger.rejected`: a webhook delivery refused for a bad signature, or for a body too large, is
// listed among the trigger's deliveries and stored as an event for the subscriptions that want
// it. Sent over real HTTP to `POST /hooks/{token}`, as a sender would.
import http from 'node:http';
import t from 'tap';
import { buildTestApp, call, createTenant } from '../helper.ts';

const { app, db } = await buildTestApp(t);
const owner = await createTenant(app);
const base = await app.listen({ port: 0, host: '127.0.0.1' });
const flow = (await call(app, owner, { method: 'POST', url: '/flows', payload: { name: 'Hooked' } })).data;
const trigger = (
  await call(app, owner, {
    method: 'POST',
    url: '/triggers',
    payload: { flowId: flow.id, name: 'Signed', type: 'webhook', webhook: { signature: { scheme: 'standard-webhooks' } } },
  })
).data;
const subscription = (
  await call(app, owner, { method: 'POST', url: '/subscriptions', payload: { url: 'https://hooks.example.com/in', events: ['trigger.rejected'] } })
).data;

/** POSTs to the trigger's hook over a socket; the status, or the connection's end when the server closes it first. */
function post(headers: Record<string, string | number>, body: Buffer | undefined, chunks?: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${base}/hooks/${trigger.webhook.token}?source=test`, { method: 'POST', headers }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    });
    request.on('error', reject);
    if (chunks) {
      for (const chunk of chunks) request.write(chunk);
      request.end();
    } else request.end(body);
  });
}

/** The trigger.rejected events stored for the subscription, oldest first (waiting up to 5 s for `count`). */
async function rejectedEvents(count: number) {
  const until = Date.now() + 5000;
  for (;;) {
    const rows = await db.eventDelivery.findMany({ where: { subscriptionId: subscription.id, event: 'trigger.rejected' }, orderBy: { seq: 'asc' } });
    if (rows.length >= count || Date.now() > until) return rows;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('a bad signature is refused, listed, and reported', async (t) => {
  const body = Buffer.from(JSON.stringify({ hello: 'world' }));
  const status = await post(
    {
      'content-type': 'application/json',
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': 'v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    },
    body,
  );
  t.equal(status, 401);
  const [delivery] = await db.triggerDelivery.findMany({ where: { triggerId: trigger.id, outcome: 'rejected' }, orderBy: { id: 'desc' } });
  t.ok(delivery, 'listed as rejected');
  const [event] = await rejectedEvents(1);
  t.ok(event, 'a trigger.rejected event is stored');
  const payload = JSON.parse(event!.payload);
  t.equal(payload.type, 'trigger.rejected');
  t.same(payload.data, {
    triggerId: trigger.id,
    flowId: flow.id,
    deliveryId: delivery!.id,
    reason: delivery!.reason,
    receivedAt: delivery!.createdAt.toISOString(),
  });
  t.match(payload.data.reason, /signature/i);
  t.equal(event!.executionId, null);
  const listed = await call(app, owner, { method: 'GET', url: `/subscriptions/${subscription.id}/deliveries` });
  t.match(listed.data.items[0], { id: event!.id, event: 'trigger.rejected', executionId: null, status: 'pending', payload });
});

t.test('a body too large is refused, listed without its body, and reported', async (t) => {
  const before = (await rejectedEvents(0)).length;
  const large = Buffer.alloc(1024 * 1024 + 1, 'a');
  t.equal(await post({ 'content-type': 'text/plain', 'content-length': large.length, 'x-sender': 'declared' }, large), 413, 'a declared length');
  const chunks = Array.from({ length: 17 }, () => Buffer.alloc(64 * 1024, 'b'));
  t.equal(await post({ 'content-type': 'text/plain', 'transfer-encoding': 'chunked', 'x-sender': 'streamed' }, undefined, chunks), 413, 'a stream');
  const events = await rejectedEvents(before + 2);
  t.equal(events.length, before + 2, 'each is reported');
  const rejected = await db.triggerDelivery.findMany({ where: { triggerId: trigger.id, outcome: 'rejected' }, orderBy: { id: 'desc' }, take: 2 });
  for (const delivery of rejected) {
    t.equal(delivery.reason, 'The body is larger than 1 MiB.');
    t.equal(delivery.body, null, 'its body is not kept');
    t.same(JSON.parse(delivery.query!), { source: 'test' });
  }
  t.same(rejected.map((delivery) => JSON.parse(delivery.headers!)['x-sender']).sort(), ['declared', 'streamed']);
  for (const event of events.slice(before)) {
    const { data } = JSON.parse(event.payload);
    t.equal(data.reason, 'The body is larger than 1 MiB.');
    t.ok(
      rejected.some((delivery) => delivery.id === data.deliveryId),
      'names the rejected delivery',
    );
  }
  const listed = await call(app, owner, { method: 'GET', url: `/triggers/${trigger.id}/deliveries` });
  t.match(listed.data.items[0], { outcome: 'rejected', reason: 'The body is larger than 1 MiB.', body: null });
});

t.test('a body too large for an address that names no trigger keeps nothing', async (t) => {
  const count = await db.triggerDelivery.count();
  const large = Buffer.alloc(1024 * 1024 + 1, 'a');
  const status = await new Promise<number>((resolve, reject) => {
    const request = http.request(`${base}/hooks/wh_${'x'.repeat(43)}`, { method: 'POST', headers: { 'content-type': 'text/plain' } }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    });
    request.on('error', reject);
    request.end(large);
  });
  t.equal(status, 413);
  t.equal(await db.triggerDelivery.count(), count);
});

// Events as a receiver gets them: a run's execution.started then execution.completed, POSTed as
// JSON, the body byte for byte as stored, signed by the Standard Webhooks spec (checked with the
// reference algorithm written in scene.ts and with the spec's own library); a redelivery keeps
// its webhook-id; during a rotation's overlap both secrets sign, each signature verifying with its
// own secret, and after it only the new one.
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { world } from '../engine/world.ts';
import { newWhsec, startReceiver, subscribe, until, verifiesWith } from './scene.ts';

const deliveriesOf = (w: Awaited<ReturnType<typeof world>>, subscriptionId: string) =>
  w.db.$queryRaw<{ id: string; event: string; payload: string; status: string; attempts: number; lastStatus: number | null }[]>`
    SELECT id, event, payload, status::text, attempts, last_status AS "lastStatus" FROM event_deliveries
    WHERE subscription_id = ${subscriptionId}::uuid ORDER BY seq`;

t.test('a run is heard as execution.started then execution.completed, signed by the Standard Webhooks spec', async (t) => {
  const w = await world(t);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const subscription = await subscribe(w.db, w.keyring, w.member.orgId, receiver.url);
  const flow = await w.flow({ steps: [{ key: 'call', actionId: await w.action() }] });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'completed');

  await until('both events delivered', () => receiver.delivered().length === 2);
  // The receiver answered; the sender records it right after.
  await until('both recorded', async () => (await deliveriesOf(w, subscription.id)).every((row) => row.status === 'delivered'));
  const rows = await deliveriesOf(w, subscription.id);
  t.same(
    receiver.heard.map((heard) => heard.event.type),
    ['execution.started', 'execution.completed'],
  );
  for (const [i, heard] of receiver.heard.entries()) {
    const row = rows[i]!;
    t.equal(heard.body, row.payload, 'the body is the stored payload, byte for byte');
    t.equal(heard.headers['content-type'], 'application/json');
    t.equal(heard.headers['webhook-id'], row.id, 'webhook-id is the delivery id');
    t.ok(Math.abs(Number(heard.headers['webhook-timestamp']) - heard.at / 1000) < 5, 'webhook-timestamp is the attempt time in unix seconds');
    t.match(heard.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/, 'one signature');
    t.ok(verifiesWith(subscription.secret, heard.headers, heard.body), 'the reference algorithm verifies it');
    t.same(new Webhook(subscription.secret).verify(heard.body, heard.headers), JSON.parse(row.payload), 'the standardwebhooks library verifies it');
    t.notOk(verifiesWith(newWhsec(), heard.headers, heard.body), 'another secret does not');
    t.notOk(verifiesWith(subscription.secret, heard.headers, `${heard.body} `), 'an altered body does not');
    t.match(heard.event, { type: row.event, data: { id: execution.id, flowId: flow.id, status: i === 0 ? 'running' : 'completed' } });
  }
  t.match(rows, [
    { status: 'delivered', attempts: 1, lastStatus: 200 },
    { status: 'delivered', attempts: 1, lastStatus: 200 },
  ]);

  // Redelivery: pending again (as the API's redeliver sets it), sent again with the same id and body.
  await w.db.$executeRaw`UPDATE event_deliveries SET status = 'pending', next_attempt_at = now() WHERE id = ${rows[1]!.id}::uuid`;
  await until('the redelivery', () => receiver.delivered().length === 3);
  await until('the redelivery recorded', async () => (await deliveriesOf(w, subscription.id))[1]!.status === 'delivered');
  const again = receiver.heard[2]!;
  t.equal(again.headers['webhook-id'], rows[1]!.id, 'the same webhook-id');
  t.equal(again.body, rows[1]!.payload, 'the same body');
  t.ok(verifiesWith(subscription.secret, again.headers, again.body));
  t.match(await deliveriesOf(w, subscription.id), [{ attempts: 1 }, { status: 'delivered', attempts: 2 }]);
});

t.test('during a rotation both secrets sign, each signature verifying with its own; after it, only the new one', async (t) => {
  const w = await world(t);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const old = await subscribe(w.db, w.keyring, w.member.orgId, receiver.url, { events: ['execution.completed'] });
  const rotated = newWhsec();
  const seal = (secret: string) => w.keyring.sealSubscriptionSecret(secret, { orgId: w.member.orgId, subscriptionId: old.id });
  // As rotate-secret leaves it: the new secret signs, the old one too until the overlap ends.
  await w.db.$executeRaw`UPDATE subscriptions SET secret = ${seal(rotated)}, previous_secret = ${seal(old.secret)},
    previous_secret_until = now() + interval '1 hour' WHERE id = ${old.id}::uuid`;
  const flow = await w.flow({ steps: [{ key: 'call', actionId: await w.action() }] });
  await w.run(flow.id);
  await until('the event during the overlap', () => receiver.delivered().length === 1);
  const during = receiver.heard[0]!;
  const signatures = during.headers['webhook-signature']!.split(' ');
  t.equal(signatures.length, 2, 'two signatures, space-separated');
  const alone = (signature: string) => ({ ...during.headers, 'webhook-signature': signature });
  t.ok(verifiesWith(rotated, alone(signatures[0]!), during.body), 'the first is the new secret’s');
  t.ok(verifiesWith(old.secret, alone(signatures[1]!), during.body), 'the second is the old secret’s');
  t.notOk(verifiesWith(old.secret, alone(signatures[0]!), during.body));
  t.ok(new Webhook(old.secret).verify(during.body, during.headers), 'a receiver still on the old secret accepts it');
  t.ok(new Webhook(rotated).verify(during.body, during.headers), 'a receiver on the new secret accepts it');

  await w.db.$executeRaw`UPDATE subscriptions SET previous_secret_until = now() - interval '1 second' WHERE id = ${old.id}::uuid`;
  await w.run(flow.id);
  await until('the event after the overlap', () => receiver.delivered().length === 2);
  const after = receiver.heard[1]!;
  t.equal(after.headers['webhook-signature']!.split(' ').length, 1, 'one signature once the overlap is over');
  t.ok(verifiesWith(rotated, after.headers, after.body));
  t.notOk(verifiesWith(old.secret, after.headers, after.body));
});

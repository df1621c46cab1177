// Piling deliveries on the senders. One organization's receiver hangs (or fails slowly): its
// deliveries pile up pending and due, while it has all the sends in flight it may have. Each claim
// of every sender (every second, and after every send ends, on every worker) numbered every due
// delivery of every organization to interleave them: 100,000 piled up made each claim read and sort
// all of them (about 300 ms here; the NOT EXISTS of the order per execution hashed all of them
// too), for every organization's events, as long as the pile lasted. A claim asks each enabled
// subscription of an organization with room for the few it may take, by index (under a
// millisecond). The deliveries of a disabled subscription cost nothing either.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { claimDue } from '../../src/events/deliveries.ts';
import { newWhsec } from '../events/scene.ts';
import { buildTestApp, createTenant } from '../helper.ts';

t.test('a pile of one organization’s due deliveries costs the claims nothing', async (t) => {
  const app = await buildTestApp(t);
  const piled = await createTenant(app.app, 'Piled');
  const other = await createTenant(app.app, 'Other');
  const subscription = async (orgId: string) => {
    const id = randomUUID();
    await app.db.$executeRaw`INSERT INTO subscriptions (id, org_id, url, events, secret, updated_at)
      VALUES (${id}::uuid, ${orgId}::uuid, 'http://127.0.0.1:9/hooks', '{execution.completed}', ${newWhsec()}, now())`;
    return id;
  };
  const pile = await subscription(piled.orgId);
  await app.db.$executeRaw`INSERT INTO event_deliveries (id, org_id, subscription_id, execution_id, event, payload, next_attempt_at)
    SELECT gen_random_uuid(), ${piled.orgId}::uuid, ${pile}::uuid, gen_random_uuid(), 'execution.completed', '{}', now() - interval '1 minute'
    FROM generate_series(1, 100000)`;
  await app.db.$executeRawUnsafe('ANALYZE event_deliveries');
  const otherId = await subscription(other.orgId);
  const claim = (sending: Map<string, number>) => claimDue(app.db, { limit: 10, orgLimit: 2, sending, leaseMs: 60_000 });
  // The piled organization has as many sends in flight as it may.
  const busy = new Map([[piled.orgId, 2]]);
  await claim(busy);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    await app.db
      .$executeRaw`INSERT INTO event_deliveries (id, org_id, subscription_id, event, payload) VALUES (gen_random_uuid(), ${other.orgId}::uuid, ${otherId}::uuid, 'trigger.rejected', '{}')`;
    const started = performance.now();
    const claimed = await claim(busy);
    times.push(performance.now() - started);
    t.same(
      claimed.map((delivery) => delivery.orgId),
      [other.orgId],
      'the other organization’s delivery is claimed',
    );
  }
  const median = times.sort((a, b) => a - b)[2]!;
  t.ok(median < 50, `a claim takes ${Math.round(median)} ms (median of 5) beside 100,000 due deliveries of an organization at its limit`);
  t.equal((await claim(new Map())).length, 2, 'the piled organization’s turn, once it has room: its limit');

  await app.db.$executeRaw`UPDATE subscriptions SET enabled = false WHERE id = ${pile}::uuid`;
  const started = performance.now();
  t.same(await claim(new Map()), [], 'a disabled subscription’s deliveries are not due');
  t.ok(performance.now() - started < 200, 'and cost the claim little');
  await app.db.$executeRaw`UPDATE subscriptions SET enabled = true WHERE id = ${pile}::uuid`;
  await app.db.$executeRaw`UPDATE event_deliveries SET next_attempt_at = now() WHERE subscription_id = ${pile}::uuid AND next_attempt_at > now()`;
  t.equal((await claim(new Map())).length, 2, 'enabled again: they are due');
});

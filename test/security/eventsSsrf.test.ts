// Reaching inside the network through a subscription's URL: the sender connects through the
// steps' SSRF guard. A subscription at `localhost`, or at the loopback address in the spellings a
// URL accepts (short `127.1`, decimal, IPv6 `[::1]`, IPv4-mapped `[::ffff:7f00:1]`, NAT64), has
// its delivery failed at once as blocked-target, saying why; the receiver hears nothing.
import t from 'tap';
import { EVENTS } from '../../src/config/settings.ts';
import { world } from '../engine/world.ts';
import { startReceiver, subscribe, until } from '../events/scene.ts';

t.test('a subscription at a private address is never sent to', async (t) => {
  const w = await world(t, { allowPrivateTargets: false, events: { ...EVENTS, sendTimeoutMs: 2000 } });
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const port = new URL(receiver.url).port;
  const hosts = ['localhost', '127.1', '2130706433', '[::1]', '[::ffff:7f00:1]', '[64:ff9b::7f00:1]', '0.0.0.0'];
  const subscriptions = [];
  for (const host of hosts) {
    subscriptions.push(await subscribe(w.db, w.keyring, w.member.orgId, `http://${host}:${port}/hooks`, { events: ['execution.completed'] }));
  }
  const flow = await w.flow({ steps: [{ key: 'done', transform: { ok: true } }] });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'completed');
  const settled = async () =>
    w.db.$queryRaw<{ status: string; lastError: string | null; url: string }[]>`
      SELECT d.status::text, d.last_error AS "lastError", s.url FROM event_deliveries d JOIN subscriptions s ON s.id = d.subscription_id
      WHERE d.execution_id = ${execution.id}::uuid AND d.status <> 'pending'`;
  await until('every delivery settled', async () => (await settled()).length === hosts.length);
  for (const delivery of await settled()) {
    t.match(delivery, { status: 'failed', lastError: /blocked-target.*not a public address|not a public address/ }, delivery.url);
  }
  t.equal(receiver.heard.length, 0, 'the receiver heard nothing');
});

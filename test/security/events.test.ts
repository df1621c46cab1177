// Attacks on events out (issue 23), and what each must get:
// - a run whose output holds a lone UTF-16 surrogate (an API answered `{"text":"a\ud800b"}`, which
//   JSON allows and JSON.parse reads): PostgreSQL's json type refuses it, and the trigger that
//   stores the run's events raised in the statement that ends the run, so in an organization with
//   a subscription the run could not end. The run ends, and its event is stored and sent.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { world } from '../engine/world.ts';
import { startReceiver, subscribe, until } from '../events/scene.ts';

const w = await world(t);
const receiver = await startReceiver();
t.teardown(() => receiver.close());
await subscribe(w.db, w.keyring, w.member.orgId, receiver.url, { events: ['execution.completed', 'execution.failed'] });

/** An API that answers every call with `body`, as JSON. */
async function answering(body: string): Promise<string> {
  const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Odd', baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } });
  const action = await w.send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'odd', key: `odd-${tool.data.id}`, method: 'GET', endpoint: '/' },
  });
  return action.data.id;
}

t.test('a run whose output holds a lone surrogate ends, and its event is sent', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'odd', actionId: await answering('{"text":"a\\ud800b"}') }] });
  const done = await w.run(flow.id);
  t.equal(done.status, 'completed', `the run ends: ${JSON.stringify(done.error ?? null)}`);
  await until('its event', () => receiver.delivered().some((heard) => heard.event.data.id === done.id));
  const sent = receiver.delivered().find((heard) => heard.event.data.id === done.id)!;
  t.same(sent.event.data.output, { text: 'a\ud800b' }, 'the output as the API answered it');
});

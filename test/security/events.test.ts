// Attacks on events out (issue 23), and what each must get:
// - a run whose output holds a lone UTF-16 surrogate (an API answered `{"text":"a\ud800b"}`, which
//   JSON allows and JSON.parse reads): PostgreSQL's json type refuses it, and the trigger that
//   stores the run's events raised in the statement that ends the run, so in an organization with
//   a subscription the run could not end. The run ends, and its event is stored and sent.
// - a run failing on an answer that quotes the tool's bearer token, whose flow names an error flow
//   that itself fails the same way and names itself (and a sub-flow of its own that fails too): the
//   token is in no event sent nor in the error flow's input, and the failure starts its error flow
//   once, which starts no other.
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

t.test('a failure quoting a credential: no event or error flow carries it, and its error flow starts once', async (t) => {
  const TOKEN = 'tok-e7a91c3b5d2f4068';
  // An API that fails every call, quoting the request's Authorization header.
  const server = createServer((request, response) =>
    response.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `refused ${request.headers.authorization}` })),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Failing API', baseUrl, authType: 'bearer', credentials: { token: TOKEN } } });
  const failing = (
    await w.send({ method: 'POST', url: '/actions', payload: { toolId: tool.data.id, name: 'Quoting', key: 'quoting', method: 'POST', endpoint: '/' } })
  ).data.id;
  const call = { key: 'call', actionId: failing, retry: { maxAttempts: 1 } };
  const child = await w.flow({ name: 'Child', steps: [call] });
  const handler = await w.flow({ name: 'Handler', steps: [{ key: 'sub', flow: { flowId: child.id }, continueOnError: true }, call] });
  const put = await w.send({
    method: 'PUT',
    url: `/flows/${handler.id}`,
    payload: { name: 'Handler', steps: [{ key: 'sub', flow: { flowId: child.id }, continueOnError: true }, call], onFailure: { flowId: handler.id } },
  });
  t.equal(put.statusCode, 200, put.statusCode === 200 ? 'the error flow names itself' : put.body);
  await w.send({ method: 'PUT', url: `/flows/${child.id}`, payload: { name: 'Child', steps: [call], onFailure: { flowId: handler.id } } });
  const flow = await w.flow({ steps: [call], onFailure: { flowId: handler.id } });
  const failed = await w.run(flow.id);
  t.equal(failed.status, 'failed');
  const [quoted] = await w.db.$queryRaw<{ response: string }[]>`SELECT response FROM execution_steps WHERE execution_id = ${failed.id}::uuid AND path = 'call'`;
  t.match(quoted!.response, /refused \[REDACTED\]/, 'the answer quoted the header (its token scrubbed when stored)');
  const handlerRuns = async () =>
    w.db.$queryRaw<{ id: string; status: string; input: string }[]>`SELECT id, status::text, input FROM executions WHERE flow_id = ${handler.id}::uuid`;
  await until('the error flow ended', async () => (await handlerRuns()).some((run) => run.status === 'failed'));
  await until('every event sent', () => receiver.delivered().filter((heard) => heard.event.type === 'execution.failed').length >= 3);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const runs = await handlerRuns();
  t.equal(runs.length, 1, 'one error flow run: its own failure and its sub-flow’s start no other');
  t.same(JSON.parse(runs[0]!.input).execution.id, failed.id);
  t.notOk(runs[0]!.input.includes(TOKEN), 'the error flow’s input has no token');
  t.notOk(
    receiver.heard.some((heard) => heard.body.includes(TOKEN)),
    'no event sent has the token',
  );
  const [stored] = await w.db.$queryRaw<
    { n: number }[]
  >`SELECT count(*)::int AS n FROM event_deliveries WHERE payload LIKE ${`%${TOKEN}%`} OR last_error LIKE ${`%${TOKEN}%`}`;
  t.equal(stored!.n, 0, 'no delivery stores it');
});

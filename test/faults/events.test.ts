// Events under kill -9, with real processes against one database: a worker killed while events
// are pending and in flight, and an API node (with its worker) killed right after it acknowledged
// cancels, whose execution.cancelled events were stored in the cancels' transactions. After the
// restart every event is received, none is lost, and an event heard twice has one webhook-id.
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { Keyring } from '../../src/crypto/keyring.ts';
import { DatabaseConnection } from '../../src/db/client.ts';
import { type Receiver, startReceiver, subscribe, until, verifiesWith } from '../events/scene.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer, startWorker, type WorkerProcess } from '../process.ts';
import { sleep, sql } from './triggerScene.ts';

const KEY = randomBytes(32).toString('base64');
const keyring = new Keyring(Buffer.from(KEY, 'base64'));
/** Short retries, and a lease (timeout + 5 s) short enough to wait for. */
const EVENTS_ENV = {
  TOLSTOY_ENCRYPTION_KEY: KEY,
  TOLSTOY_EVENT_RETRY_SCHEDULE_MS: '0,200,500,1000,1000,1000,1000,1000,1000,1000',
  TOLSTOY_EVENT_TIMEOUT_MS: '2000',
};

type Request = (method: string, path: string, body?: object) => Promise<{ status: number; data: any }>;

/** A new organization on the server at `base`, and a way to call it as its owner. */
async function tenant(base: () => string): Promise<{ orgId: string; request: Request }> {
  const raw = async (method: string, path: string, body?: object, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base()}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body && JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, data: text === '' ? undefined : JSON.parse(text) };
  };
  const org = await raw('POST', '/organizations', { name: 'Events', owner: { email: 'owner@example.com' } });
  const member = { 'x-org-id': org.data.id, 'x-user-id': org.data.owner.id };
  return { orgId: org.data.id, request: (method, path, body) => raw(method, path, body, member) };
}

/** A subscription to every execution event, stored by the tests' one fixture (over a connection of its own). */
async function subscribeAt(t: Test, url: string, orgId: string, receiverUrl: string): Promise<string> {
  const database = new DatabaseConnection(url);
  t.teardown(() => database.close());
  return (await subscribe(database.current, keyring, orgId, receiverUrl)).secret;
}

/** Once no delivery is pending: every event each execution made was heard and answered, and each heard twice kept its webhook-id. */
async function everyEventHeard(t: Test, url: string, receiver: Receiver, secret: string, expected: Map<string, string[]>): Promise<void> {
  await until(
    'every run finished',
    async () => (await sql<{ n: number }>(url, "SELECT count(*)::int AS n FROM executions WHERE status IN ('queued', 'running')"))[0]!.n === 0,
    90_000,
  );
  await until(
    'no delivery pending',
    async () => (await sql<{ n: number }>(url, "SELECT count(*)::int AS n FROM event_deliveries WHERE status <> 'delivered'"))[0]!.n === 0,
    90_000,
  );
  const stored = await sql<{ id: string; event: string; executionId: string }>(url, 'SELECT id, event, execution_id AS "executionId" FROM event_deliveries');
  const heardKinds = new Map<string, Set<string>>();
  for (const heard of receiver.delivered()) {
    const key = `${heard.event.data.id} ${heard.event.type}`;
    heardKinds.set(key, (heardKinds.get(key) ?? new Set()).add(heard.headers['webhook-id']!));
  }
  let lost = 0;
  for (const [executionId, kinds] of expected) for (const kind of kinds) if (!heardKinds.has(`${executionId} ${kind}`)) lost++;
  t.equal(lost, 0, '0 events lost');
  t.equal(stored.length, [...expected.values()].flat().length, 'one delivery stored per event');
  const ids = [...heardKinds.values()];
  t.ok(
    ids.every((set) => set.size === 1),
    'every event heard more than once kept one webhook-id',
  );
  const all = receiver.heard.filter((heard) => heard.answer !== 'hang');
  t.ok(
    all.every((heard) => verifiesWith(secret, heard.headers, heard.body)),
    'every request signed',
  );
  t.comment(`${receiver.heard.length} requests for ${stored.length} events`);
}

t.test('a worker killed with kill -9 while events are pending and in flight: every event is received after a restart', async (t) => {
  const url = await freshDatabaseUrl(t);
  const api = await startServer({ DATABASE_URL: url, TOLSTOY_WORKER: 'false', ...EVENTS_ENV });
  t.teardown(() => api.process.kill('SIGKILL'));
  const workers: WorkerProcess[] = await Promise.all([startWorker({ DATABASE_URL: url, ...EVENTS_ENV }), startWorker({ DATABASE_URL: url, ...EVENTS_ENV })]);
  t.teardown(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  // Slow enough that sends are in flight when a worker dies.
  const receiver = await startReceiver(async () => {
    await sleep(300);
    return 200;
  });
  t.teardown(() => receiver.close());
  const { orgId, request } = await tenant(() => api.base);
  const secret = await subscribeAt(t, url, orgId, receiver.url);
  const flow = await request('POST', '/flows', { name: 'Quick', steps: [{ key: 'done', transform: { ok: true } }] });

  const expected = new Map<string, string[]>();
  let inFlightAtKill = 0;
  for (let batch = 0; batch < 8; batch++) {
    const started = await Promise.all(Array.from({ length: 5 }, () => request('POST', `/flows/${flow.data.id}/executions`, {})));
    for (const run of started) expected.set(run.data.id, ['execution.started', 'execution.completed']);
    if (batch === 3) {
      await until('sends in flight', () => receiver.inFlight() > 0, 10_000);
      inFlightAtKill = receiver.inFlight();
      workers[0]!.process.kill('SIGKILL');
      workers.push(await startWorker({ DATABASE_URL: url, ...EVENTS_ENV }));
    }
  }
  t.ok(inFlightAtKill > 0, `${inFlightAtKill} sends in flight when the worker was killed`);
  await everyEventHeard(t, url, receiver, secret, expected);
});

t.test('an API node killed with kill -9 right after acknowledging cancels: every execution.cancelled is received after its restart', async (t) => {
  const url = await freshDatabaseUrl(t);
  let node = await startServer({ DATABASE_URL: url, ...EVENTS_ENV });
  t.teardown(() => node.process.kill('SIGKILL'));
  const receiver = await startReceiver(async () => {
    await sleep(300);
    return 200;
  });
  t.teardown(() => receiver.close());
  const { orgId, request } = await tenant(() => node.base);
  const secret = await subscribeAt(t, url, orgId, receiver.url);
  const flow = await request('POST', '/flows', { name: 'Sleepy', steps: [{ key: 'nap', sleep: { ms: 600_000 } }] });
  const runs = await Promise.all(Array.from({ length: 8 }, () => request('POST', `/flows/${flow.data.id}/executions`, {})));
  await until('every run sleeping', async () => {
    const [row] = await sql<{ n: number }>(url, "SELECT count(*)::int AS n FROM executions WHERE status = 'running'");
    return row!.n === runs.length;
  });

  const cancels = await Promise.all(runs.map((run) => request('POST', `/executions/${run.data.id}/cancel`)));
  node.process.kill('SIGKILL');
  t.same(
    cancels.map((cancel) => cancel.status),
    runs.map(() => 200),
    'every cancel acknowledged before the kill',
  );
  const [pending] = await sql<{ n: number }>(url, "SELECT count(*)::int AS n FROM event_deliveries WHERE status = 'pending' AND event = 'execution.cancelled'");
  t.ok(pending!.n > 0, `${pending!.n} execution.cancelled events undelivered at the kill`);

  node = await startServer({ DATABASE_URL: url, ...EVENTS_ENV });
  const expected = new Map(runs.map((run) => [run.data.id as string, ['execution.started', 'execution.cancelled']]));
  await everyEventHeard(t, url, receiver, secret, expected);
});

// Where flows run: `npm start` runs them in the API process; TOLSTOY_WORKER=false makes an
// API-only node, whose runs wait for a worker process (`npm run worker`) against the same database.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer, startWorker } from '../process.ts';
import { startTarget } from './target.ts';

const key = randomBytes(32).toString('base64');

/** A member of a new organization, talking to the server at `base` over HTTP. */
async function client(base: string) {
  const request = async (method: string, path: string, body?: object, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: body && JSON.stringify(body) });
    return { status: response.status, data: (await response.json()) as any };
  };
  const org = (await request('POST', '/organizations', { name: 'P', owner: { email: 'p@example.com' } })).data;
  const tenant = { 'x-org-id': org.id, 'x-user-id': org.owner.id };
  return (method: string, path: string, body?: object, headers: Record<string, string> = {}) => request(method, path, body, { ...tenant, ...headers });
}

/** A one-step flow that calls the server's own /health. */
async function pingFlow(send: Awaited<ReturnType<typeof client>>, base: string): Promise<string> {
  const tool = (await send('POST', '/tools', { name: 'Self', baseUrl: base })).data;
  const action = (await send('POST', '/actions', { toolId: tool.id, name: 'health', key: 'health', method: 'GET', endpoint: '/health' })).data;
  return (await send('POST', '/flows', { name: 'Ping', steps: [{ key: 'ping', actionId: action.id }] })).data.id;
}

t.test('npm start runs flows in the API process', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), TOLSTOY_ENCRYPTION_KEY: key });
  const send = await client(server.base);
  const flowId = await pingFlow(send, server.base);
  const run = await send('POST', `/flows/${flowId}/executions`, {}, { prefer: 'wait=10' });
  t.equal(run.status, 200);
  t.match(run.data, { status: 'completed', output: { status: 'ok' } });
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);
});

t.test('an API-only node queues runs; a worker process runs them', async (t) => {
  const url = await freshDatabaseUrl(t);
  const server = await startServer({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: key, TOLSTOY_WORKER: 'false' });
  t.teardown(() => server.process.kill('SIGKILL'));
  const send = await client(server.base);
  const flowId = await pingFlow(send, server.base);
  const queued = await send('POST', `/flows/${flowId}/executions`, {}, { prefer: 'wait=1' });
  t.equal(queued.status, 202);
  t.equal(queued.data.status, 'queued', 'nothing runs it');
  const worker = await startWorker({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: key });
  t.teardown(() => worker.process.kill('SIGKILL'));
  let status = 'queued';
  for (let i = 0; i < 200 && status !== 'completed'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    status = (await send('GET', `/executions/${queued.data.id}`)).data.status;
  }
  t.equal(status, 'completed', 'the worker took the queued run');
  const waited = await send('POST', `/flows/${flowId}/executions`, {}, { prefer: 'wait=10' });
  t.equal(waited.status, 200, 'Prefer: wait hears of a run finished in another process');
  worker.process.kill('SIGTERM');
  t.equal(await worker.exited, 0);
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);
});

t.test('a cancel through an API-only node stops the step in flight on a worker process within 1 s', async (t) => {
  const url = await freshDatabaseUrl(t);
  const server = await startServer({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: key, TOLSTOY_WORKER: 'false' });
  t.teardown(() => server.process.kill('SIGKILL'));
  const worker = await startWorker({ DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: key });
  t.teardown(() => worker.process.kill('SIGKILL'));
  const target = await startTarget();
  t.teardown(() => target.close());
  const send = await client(server.base);
  const tool = (await send('POST', '/tools', { name: 'Target', baseUrl: target.url })).data;
  const action = (await send('POST', '/actions', { toolId: tool.id, name: 'hang', key: 'hang', method: 'POST', endpoint: '/hang/forever' })).data;
  const flowId = (await send('POST', '/flows', { name: 'Hang', steps: [{ key: 'hanging', actionId: action.id, timeoutMs: 60_000 }] })).data.id;
  const started = (await send('POST', `/flows/${flowId}/executions`, {})).data;
  const call = async () => {
    for (let i = 0; i < 200; i++) {
      const found = target.received.find((r) => r.headers['idempotency-key'] === `${started.id}:hanging`);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('the worker never called');
  };
  const inFlight = await call();
  const cancelledAt = Date.now();
  t.equal((await send('POST', `/executions/${started.id}/cancel`)).data.status, 'cancelled');
  while (!inFlight.aborted && Date.now() - cancelledAt < 5000) await new Promise((resolve) => setTimeout(resolve, 10));
  const took = Date.now() - cancelledAt;
  t.ok(inFlight.aborted, 'the worker aborted the request');
  t.ok(took < 1000, `within ${took} ms of the cancel, through another process`);
});

// /metrics, scraped from a server process as Prometheus would: requests by route and status, the
// database pool, executions by status and the queue, step attempts by outcome, the process. The
// metrics have a port of their own, off the public API.
import t from 'tap';
import { freePort } from '../../src/db/embedded.ts';
import { startTarget } from '../engine/target.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer } from '../process.ts';

const metricsPort = await freePort();
const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), TOLSTOY_METRICS_PORT: String(metricsPort), LOG_LEVEL: 'info' });
t.teardown(() => server.process.kill('SIGKILL'));
const target = await startTarget();
t.teardown(() => target.close());

async function send(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const response = await fetch(`${server.base}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (response.status === 204 ? undefined : await response.json()) as any };
}

/** One scrape: each sample's value by its name and labels, as the text format writes them. */
async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

t.test('the server says where its metrics are, on a port apart from the API', async (t) => {
  t.match(server.output(), new RegExp(`Metrics at http://127\\.0\\.0\\.1:${metricsPort}/metrics`));
  const api = await fetch(`${server.base}/metrics`);
  t.equal(api.status, 404, 'not on the API');
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404);
});

t.test('requests, pool, executions, queue and steps, as a scrape sees them', async (t) => {
  const org = (await send('POST', '/organizations', {}, { name: 'Metered', owner: { email: 'o@metered.test' } })).body;
  const as = { 'x-org-id': org.id, 'x-user-id': org.owner.id };
  const tool = (await send('POST', '/tools', as, { name: 'Target', baseUrl: target.url })).body;
  const action = (await send('POST', '/actions', as, { toolId: tool.id, name: 'Echo', key: 'echo', method: 'POST', endpoint: '/echo/m' })).body;
  const flow = (await send('POST', '/flows', as, { name: 'Metered', steps: [{ key: 'a', actionId: action.id }] })).body;
  for (let i = 0; i < 3; i++) {
    const run = await send('POST', `/flows/${flow.id}/executions`, { ...as, prefer: 'wait=10' }, {});
    t.equal(run.body.status, 'completed');
  }
  for (let i = 0; i < 2; i++) t.equal((await send('GET', `/tools/${tool.id}`, as)).status, 200);
  t.equal((await send('GET', '/tools/01a20000-0000-7000-8000-000000000000', as)).status, 404);
  t.equal((await send('GET', '/nowhere/at/all', as)).status, 404);

  const samples = await scrape();
  const value = (name: string) => samples.get(name);
  t.equal(value('tolstoy_http_request_duration_seconds_count{method="GET",route="/tools/:id",status="200"}'), 2, 'requests by route template and status');
  t.equal(value('tolstoy_http_request_duration_seconds_count{method="GET",route="/tools/:id",status="404"}'), 1);
  t.equal(value('tolstoy_http_request_duration_seconds_count{method="POST",route="/flows/:id/executions",status="200"}'), 3);
  t.equal(
    value('tolstoy_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}'),
    2,
    'no series per unknown path (this one, and /metrics asked of the API)',
  );
  t.ok(value('tolstoy_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/tools/:id",status="200"}') === 2, 'latency buckets');
  t.equal(value('tolstoy_executions{status="completed"}'), 3, 'executions by status');
  t.equal(value('tolstoy_executions{status="failed"}'), 0);
  t.equal(value('tolstoy_queue_depth'), 0, 'nothing waits');
  t.ok((value('tolstoy_db_pool_connections{state="total"}') ?? 0) >= 1, 'the pool');
  t.equal(value('tolstoy_db_pool_connections{state="waiting"}'), 0);
  t.equal(value('tolstoy_step_attempt_duration_seconds_count{status="completed"}'), 3, 'step attempts by outcome');
  t.ok((value('tolstoy_process_resident_memory_bytes') ?? 0) > 0, 'the process');
  t.ok(value('tolstoy_nodejs_eventloop_lag_seconds') !== undefined);
});

// Traces over OTLP/HTTP, received by a collector this test runs: a server process exports spans
// of its requests, their database queries, and the runs and steps of flows, in one trace per
// request (continuing the caller's traceparent). Without OTEL_EXPORTER_OTLP_ENDPOINT, nothing is sent.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startTarget } from '../engine/target.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer } from '../process.ts';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Record<string, unknown>;
  service: string;
}

// The collector: OTLP/HTTP with JSON bodies, as the exporter sends them.
const received: ReceivedSpan[] = [];
let posts = 0;
const collector = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    posts++;
    if (request.url !== '/v1/traces') return response.writeHead(404).end();
    for (const resourceSpans of JSON.parse(body).resourceSpans ?? []) {
      const service = resourceSpans.resource.attributes.find((a: any) => a.key === 'service.name')?.value.stringValue;
      for (const scope of resourceSpans.scopeSpans)
        for (const span of scope.spans) {
          const attributes = Object.fromEntries(span.attributes.map((a: any) => [a.key, Object.values(a.value)[0]]));
          received.push({ traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId || undefined, name: span.name, attributes, service });
        }
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
t.teardown(() => collector.close());
const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
const target = await startTarget();
t.teardown(() => target.close());

async function until<T>(find: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} never arrived; received: ${received.map((s) => s.name).join(', ')}`);
}

t.test('requests, their queries, and runs with their steps arrive as spans of one trace each', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' });
  t.teardown(() => server.process.kill('SIGKILL'));
  const send = async (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) => {
    const response = await fetch(`${server.base}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await response.json()) as any;
  };
  const org = await send('POST', '/organizations', {}, { name: 'Traced', owner: { email: 'o@traced.test' } });
  const as = { 'x-org-id': org.id, 'x-user-id': org.owner.id };
  const tool = await send('POST', '/tools', as, { name: 'Target', baseUrl: target.url });
  const action = await send('POST', '/actions', as, { toolId: tool.id, name: 'Echo', key: 'echo', method: 'POST', endpoint: '/echo/t' });
  const flow = await send('POST', '/flows', as, { name: 'Traced', steps: [{ key: 'a', actionId: action.id }] });

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  await send('GET', `/tools/${tool.id}`, { ...as, traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
  const request = await until(() => received.find((s) => s.name === 'GET /tools/:id'), 'the request span');
  t.equal(request.traceId, traceId, "the caller's trace continues");
  t.equal(request.parentSpanId, '00f067aa0ba902b7');
  t.match(request.attributes, { 'http.request.method': 'GET', 'http.route': '/tools/:id', 'http.response.status_code': 200 });
  t.equal(request.service, 'Tolstoy');
  const queries = await until(() => {
    const found = received.filter((s) => s.traceId === traceId && s.name.startsWith('prisma:'));
    return found.some((s) => s.name === 'prisma:client:db_query') ? found : undefined;
  }, 'the database spans');
  const operation = queries.find((s) => s.name === 'prisma:client:operation' && s.parentSpanId === request.spanId);
  t.ok(operation, "a Prisma operation is a child of the request's span");
  t.ok(
    queries.some((s) => s.name === 'prisma:client:db_query' && s.parentSpanId === operation?.spanId),
    'and its query a child of the operation',
  );

  const run = await send('POST', `/flows/${flow.id}/executions`, { ...as, prefer: 'wait=10' }, {});
  t.equal(run.status, 'completed');
  const execution = await until(() => received.find((s) => s.name === 'execution' && s.attributes['tolstoy.execution_id'] === run.id), 'the run span');
  const step = await until(() => received.find((s) => s.name === 'step a' && s.traceId === execution.traceId), 'the step span');
  t.equal(step.parentSpanId, execution.spanId, 'the step is part of its run');
  t.match(step.attributes, { 'tolstoy.action_id': action.id, 'tolstoy.attempt': 1, 'tolstoy.status': 'completed' });
  t.ok(
    received.some((s) => s.traceId === execution.traceId && s.name.startsWith('prisma:')),
    "the run's queries are in its trace",
  );
});

t.test('without OTEL_EXPORTER_OTLP_ENDPOINT nothing is exported', async (t) => {
  const before = posts;
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), OTEL_EXPORTER_OTLP_ENDPOINT: '' });
  t.teardown(() => server.process.kill('SIGKILL'));
  for (let i = 0; i < 5; i++) await fetch(`${server.base}/ready`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(posts, before);
});

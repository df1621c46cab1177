// Every answer carries a request id, the caller's when well-formed; it is in every log line of
// the request and in every problem document.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { buildApp } from '../../src/http/app.ts';
import { buildTestApp, call, createTenant } from '../helper.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const { database, services } = await buildTestApp(t);
let lines: string[] = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    done();
  },
});
const app = await buildApp({ database, services, logger: pino({ level: 'trace' }, sink) });
t.teardown(() => app.close());
const acme = await createTenant(app);
const logged = (id: string) => lines.map((line) => JSON.parse(line)).filter((line) => line.requestId === id);

t.test('a well-formed X-Request-Id is echoed, logged with every line of the request, and named in problems', async (t) => {
  lines = [];
  const ok = await call(app, acme, { method: 'GET', url: '/tools', headers: { 'x-request-id': 'req_abc-123' } });
  t.equal(ok.statusCode, 200);
  t.equal(ok.headers['x-request-id'], 'req_abc-123');
  t.ok(logged('req_abc-123').length >= 1, 'its access-log line');
  t.equal(logged('req_abc-123').length, lines.length, 'every line names it');

  const missing = await call(app, acme, {
    method: 'GET',
    url: '/tools/01a20000-0000-7000-8000-000000000000',
    headers: { 'x-request-id': 'Root=1-5759e988;Parent=53995c3f' },
  });
  t.equal(missing.statusCode, 404);
  t.equal(missing.headers['x-request-id'], 'Root=1-5759e988;Parent=53995c3f');
  t.equal(missing.data.requestId, 'Root=1-5759e988;Parent=53995c3f');
});

t.test('without one, or with a malformed one, each request gets a new UUID', async (t) => {
  const seen = new Set<string>();
  for (const sent of [undefined, undefined, '', 'has space', 'x'.repeat(201), 'naïve']) {
    const response = await call(app, acme, { method: 'GET', url: '/tools', headers: sent === undefined ? {} : { 'x-request-id': sent } });
    const id = String(response.headers['x-request-id']);
    t.match(id, UUID, `instead of ${JSON.stringify(sent)}`);
    seen.add(id);
  }
  t.equal(seen.size, 6, 'each one new');
});

t.test('errors before any operation carry it too: no route, no credentials, bad input, wrong method', async (t) => {
  const cases = [
    { method: 'GET', url: '/nowhere', status: 404 },
    { method: 'GET', url: '/tools', status: 403, headers: { 'x-org-id': acme.orgId, 'x-user-id': '01a20000-0000-7000-8000-000000000000' } },
    { method: 'GET', url: '/tools?limit=0', status: 400 },
    { method: 'PATCH', url: '/health', status: 405 },
  ] as const;
  for (const { status, ...request } of cases) {
    const response = await app.inject({
      ...request,
      headers: { ...acme.headers, ...('headers' in request && request.headers), 'x-request-id': `case-${status}` },
    });
    t.equal(response.statusCode, status, `${request.method} ${request.url}`);
    t.equal(response.headers['x-request-id'], `case-${status}`);
    t.equal(response.json().requestId, `case-${status}`);
  }
});

// Routes come from the spec: every declared method answers, every other one answers 405 with
// Allow, anything else 404; the documentation is served.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import t from 'tap';
import { SPEC_PATH } from '../../src/http/spec.ts';
import { contractViolation, document } from '../contract.ts';
import { buildTestApp, call } from '../helper.ts';

const { app } = await buildTestApp(t);
// Every method Node parses (CONNECT never reaches a route).
const METHODS = http.METHODS.filter((m) => m !== 'CONNECT');

t.test('a method the spec does not define answers 405 with Allow', async (t) => {
  for (const [path, item] of Object.entries(document.paths)) {
    const defined = METHODS.filter((m) => m.toLowerCase() in item);
    const allowed = defined.includes('GET') ? [...defined, 'HEAD'] : defined;
    const url = path.replace('{id}', '01a20000-0000-7000-8000-000000000000').replace('{version}', '1');
    for (const method of METHODS.filter((m) => !allowed.includes(m))) {
      const response = await app.inject({ method: method as 'GET', url });
      t.equal(response.statusCode, 405, `${method} ${path}`);
      t.same(response.headers.allow!.toString().split(', ').sort(), allowed.sort(), `${method} ${path}: Allow`);
      t.match(response.headers['content-type'], /^application\/problem\+json/);
      // A HEAD answer has no body.
      if (method !== 'HEAD') t.match(response.json(), { status: 405, type: '/problems/method-not-allowed' });
    }
  }
});

t.test('HEAD answers like GET, without a body', async (t) => {
  const response = await app.inject({ method: 'HEAD', url: '/health' });
  t.equal(response.statusCode, 200);
  t.equal(response.body, '');
});

t.test('an unknown route answers a 404 problem', async (t) => {
  for (const url of ['/nope', '/organizations/x/y']) {
    const response = await app.inject({ method: 'GET', url });
    t.equal(response.statusCode, 404, url);
    t.match(response.json(), { type: '/problems/not-found', status: 404, instance: url });
  }
  const emptyId = await app.inject({ method: 'GET', url: '/organizations/' });
  t.equal(emptyId.statusCode, 400, 'a trailing slash leaves the id empty');
  t.match(emptyId.json().errors, [{ in: 'path', pointer: '/id' }]);
});

t.test('the docs and the spec are served', async (t) => {
  const ui = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(ui.statusCode, 200);
  t.match(ui.headers['content-type'], /text\/html/);
  const json = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.same(json.json(), document);
  const yaml = await app.inject({ method: 'GET', url: '/openapi.yaml' });
  t.match(yaml.headers['content-type'], /^application\/yaml/);
  t.equal(yaml.body, readFileSync(SPEC_PATH, 'utf8'));
});

t.test('health and readiness', async (t) => {
  t.same((await call(app, undefined, { method: 'GET', url: '/health' })).data, { status: 'ok' });
  t.same((await call(app, undefined, { method: 'GET', url: '/ready' })).data, { status: 'ok' });
});

t.test('the contract check itself catches what it should', async (t) => {
  const user = {
    id: '01a20000-0000-7000-8000-000000000000',
    orgId: '01a20000-0000-7000-8000-000000000000',
    email: 'a@b.io',
    name: null,
    role: 'member',
    createdAt: '2026-11-24T00:00:00.000Z',
    updatedAt: '2026-11-24T00:00:00.000Z',
  };
  const url = `/users/${user.id}`;
  t.equal(contractViolation('GET', url, 200, 'application/json', JSON.stringify(user)), undefined);
  t.match(contractViolation('GET', url, 418, 'application/json', '{}'), /does not declare status 418/);
  t.match(contractViolation('GET', url, 200, 'text/plain', JSON.stringify(user)), /declares application\/json/);
  t.match(contractViolation('GET', url, 200, 'application/json', JSON.stringify({ ...user, email: 3 })), /breaks its schema/);
  t.match(contractViolation('GET', url, 404, 'application/problem+json', '{"title":"x"}'), /breaks its schema/);
});

// Every problem document's type resolves to a page about its kind (RFC 9457: "dereferencing it
// SHOULD provide human-readable documentation"): what it means, what to do, an example; and
// /problems lists them all.
import t from 'tap';
import { PROBLEM_TYPE_BASE, PROBLEM_TYPES } from '../../src/resources/problemTypes.ts';
import { buildTestApp, call, createTenant, MISSING_ID, testAuth } from '../helper.ts';

const { app } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const member = await createTenant(app);

const titleOf = (html: string) => html.match(/<title>([^<]*)<\/title>/)?.[1];

t.test('each kind has a page: what it means, what to do, and an example of the document', async (t) => {
  for (const [kind, type] of Object.entries(PROBLEM_TYPES)) {
    const page = await call(app, undefined, { method: 'GET', url: PROBLEM_TYPE_BASE + kind });
    t.equal(page.statusCode, 200, kind);
    t.match(page.headers['content-type'], /^text\/html; charset=utf-8/);
    t.equal(page.headers['cache-control'], 'public, max-age=3600');
    t.equal(titleOf(page.body), `${type.title} (${type.status}) · Tolstoy API`);
    t.match(page.body, '<h2>What it means</h2>');
    t.match(page.body, '<h2>What to do</h2>');
    t.match(page.body, `&quot;type&quot;: &quot;${PROBLEM_TYPE_BASE}${kind}&quot;`, 'the example is of its type');
    const head = await app.inject({ method: 'HEAD', url: PROBLEM_TYPE_BASE + kind });
    t.equal(head.statusCode, 200, `HEAD ${kind}`);
  }
});

t.test('/problems lists every kind, each linked to its page', async (t) => {
  const index = await call(app, undefined, { method: 'GET', url: '/problems' });
  t.equal(index.statusCode, 200);
  t.equal(titleOf(index.body), 'Problem types · Tolstoy API');
  for (const kind of Object.keys(PROBLEM_TYPES)) t.match(index.body, `<a href="${PROBLEM_TYPE_BASE}${kind}">`, kind);
});

t.test('a kind that does not exist is a problem naming the path parameter', async (t) => {
  const unknown = await call(app, undefined, { method: 'GET', url: '/problems/no-such-kind' });
  t.equal(unknown.statusCode, 400);
  t.match(unknown.data.errors, [{ in: 'path', pointer: '/kind' }]);
});

t.test('the types of the problems Tolstoy answers lead to their pages', async (t) => {
  const answers = [
    await call(app, undefined, { method: 'GET', url: '/tools' }),
    await call(app, member, { method: 'GET', url: `/tools/${MISSING_ID}` }),
    await call(app, member, { method: 'GET', url: '/tools?limit=0' }),
    await call(app, member, { method: 'POST', url: '/tools', headers: { 'content-type': 'text/plain' }, payload: 'a tool' }),
    await call(app, member, { method: 'POST', url: '/actions', payload: { toolId: MISSING_ID, name: 'A', key: 'a', method: 'GET', endpoint: '/' } }),
    await app.inject({ method: 'PATCH', url: '/health' }),
  ];
  t.same(
    answers.map((answer) => answer.statusCode),
    [401, 404, 400, 415, 422, 405],
  );
  for (const answer of answers) {
    const problem = answer.json();
    const page = await app.inject({ method: 'GET', url: problem.type });
    t.equal(page.statusCode, 200, problem.type);
    t.equal(titleOf(page.body), `${problem.title} (${problem.status}) · Tolstoy API`, `${problem.type} is the page of "${problem.title}"`);
  }
});

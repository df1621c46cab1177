// Start-up and shutdown as a newcomer reads them: no warning on a normal start, a line that says
// where to go next (the API, /docs, the metrics), an index at GET /, a run handed on at shutdown
// logged as the normal event it is, and a last line that says Tolstoy stopped.
import t from 'tap';
import { startTarget } from '../engine/target.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer } from '../process.ts';

interface LogLine {
  level: number;
  msg: string;
  err?: unknown;
  [field: string]: unknown;
}

const lines = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));

const WARN = 40;

/** A line's message, with its error's when it has one. */
const said = (line: LogLine): string => [line.msg, (line.err as { message?: string } | undefined)?.message].filter(Boolean).join(': ');

// Run alone, the file starts a PostgreSQL of its own: for the whole file, not its first test.
t.before(() => freshDatabaseUrl(t));

t.test('a normal start logs no warning, and says where the API, its docs and its metrics are', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t) });
  t.teardown(() => server.process.kill('SIGKILL'));
  // The start-up lines are written before the first request is answered.
  await new Promise((resolve) => setTimeout(resolve, 700));
  const logged = lines(server.output());
  t.same(logged.filter((line) => line.level >= WARN).map(said), [], 'no warnings');
  const ready = logged.find((line) => line.msg.startsWith('Tolstoy is ready'));
  t.ok(ready, 'a line says Tolstoy is ready');
  t.match(ready?.msg, `${server.base}/`, 'the API');
  t.match(ready?.msg, `${server.base}/docs`, 'the docs');
  t.match(ready?.msg, /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/, 'the metrics');
});

t.test('GET / answers an index of the service: its name, version and where to go next', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t) });
  t.teardown(() => server.process.kill('SIGKILL'));
  const answer = await fetch(`${server.base}/`);
  t.equal(answer.status, 200);
  t.match(answer.headers.get('content-type'), /^application\/json/);
  const index = (await answer.json()) as { name: string; version: string; links: Record<string, string> };
  t.equal(index.name, 'Tolstoy API');
  t.match(index.version, /^\d+\.\d+\.\d+$/);
  t.same(index.links, { docs: '/docs', openapi: '/openapi.json', problems: '/problems', health: '/health', ready: '/ready' });
  for (const [name, link] of Object.entries(index.links)) {
    t.equal((await fetch(`${server.base}${link}`)).status, 200, `${name} leads somewhere`);
  }
});

t.test('a run handed on at shutdown is logged at info without a stack, and the last line says Tolstoy stopped', async (t) => {
  const target = await startTarget();
  t.teardown(() => target.close());
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), SHUTDOWN_TIMEOUT_MS: '5000' });
  t.teardown(() => server.process.kill('SIGKILL'));
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    (
      await fetch(`${server.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    ).json() as Promise<any>;
  const org = await post('/organizations', { name: 'Handed on', owner: { email: 'o@example.com' } });
  const as = { 'x-org-id': org.id, 'x-user-id': org.owner.id };
  const tool = await post('/tools', { name: 'Target', baseUrl: target.url }, as);
  const action = await post('/actions', { toolId: tool.id, name: 'Slow', key: 'slow', method: 'POST', endpoint: '/slow/800/step' }, as);
  const flow = await post('/flows', { name: 'Two slow steps', steps: ['one', 'two'].map((key) => ({ key, actionId: action.id })) }, as);
  await post(`/flows/${flow.id}/executions`, {}, as);
  for (let i = 0; i < 100 && target.received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(target.received.length, 1, 'the first step is in flight');
  server.process.kill('SIGTERM');
  t.equal(await server.exited, 0);
  const logged = lines(server.output());
  const handedOn = logged.find((line) => /handed on/.test(line.msg));
  t.ok(handedOn, 'the hand-off is logged');
  t.equal(handedOn?.level, 30, 'at info');
  t.notOk(handedOn?.err, 'without an error or its stack');
  t.same(logged.filter((line) => line.level >= WARN).map(said), [], 'no warnings');
  t.equal(logged.at(-1)?.msg, 'Tolstoy stopped.', 'the last line');
});

t.test('a body sent in a type Tolstoy only answers in (problem documents, HTML) is refused with 415, as any other', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t) });
  t.teardown(() => server.process.kill('SIGKILL'));
  for (const type of ['application/problem+json', 'text/html', 'text/plain']) {
    const answer = await fetch(`${server.base}/organizations`, { method: 'POST', headers: { 'content-type': type }, body: '{"name":"x"}' });
    t.equal(answer.status, 415, type);
    t.match(answer.headers.get('content-type'), /^application\/problem\+json/, type);
    t.match(await answer.json(), { type: '/problems/unsupported-media-type' }, type);
  }
});

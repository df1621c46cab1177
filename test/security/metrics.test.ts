// Attacks on the metrics, which answer without authentication:
// - scraping GET /metrics from another machine while the API listens on every interface (HOST=0.0.0.0,
//   production's default): the metrics port must refuse connections on any address but loopback,
//   unless TOLSTOY_METRICS_HOST says otherwise;
// - a tenant running flows over ever more actions to grow the metrics without bound (and to read
//   other tenants' ids in them): step attempts must be labelled by outcome only, so that the number
//   of series stays the same however many actions run, and no sample names a tenant's id.
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import t from 'tap';
import { freePort } from '../../src/db/embedded.ts';
import { startTarget } from '../engine/target.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer } from '../process.ts';

// Run alone, the file starts a PostgreSQL of its own: for the whole file, not its first test.
t.before(() => freshDatabaseUrl(t));

const outsideAddress = Object.values(networkInterfaces())
  .flat()
  .find((address) => address && !address.internal && address.family === 'IPv4')?.address;

const reachable = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, host);
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

t.test('with the API on every interface, the metrics answer on loopback only', { skip: outsideAddress ? false : 'no address but loopback here' }, async (t) => {
  const metricsPort = await freePort();
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), HOST: '0.0.0.0', TOLSTOY_METRICS_PORT: String(metricsPort) });
  t.teardown(() => server.process.kill('SIGKILL'));
  const apiPort = Number(new URL(server.base).port);
  t.ok(await reachable(outsideAddress!, apiPort), `the API answers on ${outsideAddress}`);
  t.notOk(await reachable(outsideAddress!, metricsPort), `the metrics do not answer on ${outsideAddress}`);
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status, 200, 'they do on loopback');
  t.match(server.output(), `metrics at http://127.0.0.1:${metricsPort}/metrics`, 'and the log says where');
});

t.test(
  'TOLSTOY_METRICS_HOST opens them to the network when the operator says so',
  { skip: outsideAddress ? false : 'no address but loopback here' },
  async (t) => {
    const metricsPort = await freePort();
    const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), TOLSTOY_METRICS_HOST: '0.0.0.0', TOLSTOY_METRICS_PORT: String(metricsPort) });
    t.teardown(() => server.process.kill('SIGKILL'));
    t.ok(await reachable(outsideAddress!, metricsPort));
  },
);

t.test('running flows over many actions adds no series, and no sample names a tenant id', async (t) => {
  const metricsPort = await freePort();
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), TOLSTOY_METRICS_PORT: String(metricsPort) });
  t.teardown(() => server.process.kill('SIGKILL'));
  const target = await startTarget();
  t.teardown(() => target.close());
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    (
      await fetch(`${server.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    ).json() as Promise<any>;
  const org = await post('/organizations', { name: 'Cardinality', owner: { email: 'o@example.com' } });
  const as = { 'x-org-id': org.id, 'x-user-id': org.owner.id };
  const tool = await post('/tools', { name: 'Target', baseUrl: target.url }, as);
  const ids: string[] = [org.id, org.owner.id, tool.id];
  const attemptSeries = async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return { text, series: text.split('\n').filter((line) => line.startsWith('tolstoy_step_attempt_duration_seconds')).length };
  };
  const runOverNewAction = async (n: number) => {
    const action = await post('/actions', { toolId: tool.id, name: `Echo ${n}`, key: `echo.${n}`, method: 'POST', endpoint: `/echo/${n}` }, as);
    const flow = await post('/flows', { name: `Flow ${n}`, steps: [{ key: 'a', actionId: action.id }] }, as);
    const run = await post(`/flows/${flow.id}/executions`, {}, { ...as, prefer: 'wait=10' });
    t.equal(run.status, 'completed', `run over action ${n}`);
    ids.push(action.id, flow.id, run.id);
  };
  await runOverNewAction(0);
  const afterOne = await attemptSeries();
  t.ok(afterOne.series > 0, 'attempts are measured');
  for (let n = 1; n <= 10; n++) await runOverNewAction(n);
  const afterMany = await attemptSeries();
  t.equal(afterMany.series, afterOne.series, 'ten more actions, not one more series');
  t.match(afterMany.text, /tolstoy_step_attempt_duration_seconds_count\{status="completed"\} 11/, 'every attempt counted, by outcome');
  t.same(
    ids.filter((id) => afterMany.text.includes(id)),
    [],
    'no id of the tenant in any sample',
  );
});

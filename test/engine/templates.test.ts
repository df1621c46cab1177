// What templates see of the steps before: `status` is the step's state (completed, failed or
// skipped), as everywhere in the API, and `httpStatus` the HTTP status of its answer, null when
// none came; so a template tells a skipped step from one that failed on the network.
import t from 'tap';
import { freePort } from '../../src/db/embedded.ts';
import { world } from './world.ts';

const w = await world(t);

t.test('a template tells skipped, failed without an answer, failed with one, and completed apart', async (t) => {
  const echo = await w.action();
  const notFound = await w.action({ endpoint: '/status/404' });
  const port = await freePort();
  const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Closed', baseUrl: `http://127.0.0.1:${port}` } });
  const closed = await w.send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'x', key: `closed-${port}`, method: 'GET', endpoint: '/x' },
  });
  const seen = (key: string) => ({ status: { $eval: `steps.${key}.status` }, httpStatus: { $eval: `steps.${key}.httpStatus` } });
  const flow = await w.flow({
    steps: [
      { key: 'maybe', actionId: echo, if: 'false' },
      { key: 'down', actionId: closed.data.id, continueOnError: true },
      { key: 'missing', actionId: notFound, continueOnError: true },
      { key: 'fine', actionId: echo },
      { key: 'after', actionId: echo, inputs: { maybe: seen('maybe'), down: seen('down'), missing: seen('missing'), fine: seen('fine') } },
    ],
  });
  const execution = await w.run(flow.id);
  t.match(execution.steps, [
    { status: 'skipped' },
    { status: 'failed', error: { code: 'network-error' } },
    { status: 'failed' },
    { status: 'completed' },
    { status: 'completed' },
  ]);
  t.same(execution.steps[4].request.body, {
    maybe: { status: 'skipped', httpStatus: null },
    down: { status: 'failed', httpStatus: null },
    missing: { status: 'failed', httpStatus: 404 },
    fine: { status: 'completed', httpStatus: 200 },
  });
});

t.test('a retried run sees the steps it reuses by the same names', async (t) => {
  const echo = await w.action();
  const later = await w.action({ endpoint: '/status/500' });
  const flow = await w.flow({
    steps: [
      { key: 'first', actionId: echo },
      { key: 'skipped', actionId: echo, if: 'false' },
      {
        key: 'second',
        actionId: later,
        inputs: { first: { $eval: 'steps.first.status' }, code: { $eval: 'steps.first.httpStatus' }, skipped: { $eval: 'steps.skipped.status' } },
      },
    ],
  });
  const failed = await w.run(flow.id);
  t.equal(failed.status, 'failed');
  await w.send({ method: 'PATCH', url: `/actions/${later}`, headers: { 'content-type': 'application/merge-patch+json' }, payload: { endpoint: '/echo' } });
  const retried = await w.send({ method: 'POST', url: `/executions/${failed.id}/retry` });
  const done = await w.finished(retried.data.id);
  t.match(done.steps, [{ reusedFrom: failed.id }, { reusedFrom: failed.id }, { status: 'completed', reusedFrom: null }]);
  t.same(done.steps[2].request.body, { first: 'completed', code: 200, skipped: 'skipped' });
});

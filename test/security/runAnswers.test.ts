// Attacks on the API's answers through what control flow added (nested steps, signals, sub-flows'
// lists), and what each must get:
// - a flow whose step holds the character U+0000 in a template (JSON allows it, written `\u0000`):
//   PostgreSQL's jsonb refuses it, and starting the flow answered 500; a run of it started as a
//   rerun stayed queued while its job failed at each claim, retried up to 1000 times. The flow
//   starts (202) and its run completes, with the character in its output; so does the rerun.
// - the execution logs of step runs in a loop or a branch, whose stepKey is the step run's path
//   (`each[0].call`, up to 4 keys and indices long): GET /execution-logs answered them against its
//   own schema, which gave stepKey the pattern and length of one key. They answer within it.
// - a signal's name longer than 100 characters or with a `/` in it, a payload past 64 KiB, a
//   `parentId` that is no id: 400, 422 and 400, never 500.
// - a flow's body of 500 steps (the most), nested 4 deep, each with expressions as long as a body of
//   1 MB holds: it is checked within a second; one more step, or a step nested 5 deep: 422 naming the bound.
import t from 'tap';
import { world } from '../engine/world.ts';

const w = await world(t);

t.test('a template holding U+0000 starts, runs, and runs again', async (t) => {
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'call', actionId: echo },
      { key: 'nul', transform: 'a\u0000b' },
    ],
  });
  const started = await w.app.inject({ method: 'POST', url: `/flows/${flow.id}/executions`, headers: w.member.headers, payload: {} });
  t.equal(started.statusCode, 202, `the run starts${started.statusCode === 202 ? '' : `: ${started.body.slice(0, 300)}`}`);
  if (started.statusCode !== 202) return;
  const done = await w.finished(started.json().id);
  t.match(done, { status: 'completed', output: 'a\u0000b' });
  const rerun = await w.send({ method: 'POST', url: `/executions/${done.id}/retry`, payload: { fromStep: 'nul' } });
  t.equal(rerun.statusCode, 202);
  t.match(await w.finished(rerun.data.id, 10_000), { status: 'completed', output: 'a\u0000b' }, 'the rerun runs');
});

t.test('a rerun of a flow that came to hold U+0000 runs, instead of failing its claim again and again', async (t) => {
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'call', actionId: echo },
      { key: 'then', transform: 'ok' },
    ],
  });
  const first = await w.run(flow.id);
  const steps = [
    { key: 'call', actionId: echo },
    { key: 'then', transform: 'a\u0000b' },
  ];
  t.equal((await w.send({ method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'Flow', steps } })).statusCode, 200);
  const rerun = await w.send({ method: 'POST', url: `/executions/${first.id}/retry`, payload: { fromStep: 'then', version: 'latest' } });
  t.equal(rerun.statusCode, 202);
  t.match(await w.finished(rerun.data.id, 10_000), { status: 'completed', output: 'a\u0000b' });
});

t.test('the logs of nested step runs answer within their schema', async (t) => {
  const [loop, holder, branch] = ['l', 'p', 'b'].map((letter) => letter.repeat(100)) as [string, string, string];
  const flow = await w.flow({
    steps: [{ key: loop, forEach: { items: 'range(0, 12)', steps: [{ key: holder, parallel: { branches: { [branch]: [{ key: 'leaf', transform: 1 }] } } }] } }],
  });
  const done = await w.run(flow.id);
  t.equal(done.status, 'completed');
  const logs = await w.send({ method: 'GET', url: `/execution-logs?executionId=${done.id}&limit=100` });
  t.equal(logs.statusCode, 200);
  t.ok(
    logs.data.items.some((log: { stepKey: string }) => log.stepKey === `${loop}[11].${holder}.${branch}.leaf`),
    'a log names its step run by its path',
  );
});

t.test('signals and lists refuse what they cannot take, with 4xx', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'wait', waitFor: { signal: 'go', timeoutMs: 600_000 } }] });
  const id = (await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  const signal = (name: string, payload: unknown) => w.send({ method: 'POST', url: `/executions/${id}/signals/${name}`, payload: { payload } });
  t.equal((await signal('x'.repeat(101), 1)).statusCode, 400, 'a name of 101 characters');
  t.equal((await signal('a%2Fb', 1)).statusCode, 400, 'a name with a slash');
  t.equal((await signal('go', 'x'.repeat(65_536))).statusCode, 422, 'a payload past 64 KiB');
  t.equal((await w.send({ method: 'GET', url: '/executions?parentId=not-an-id' })).statusCode, 400, 'a parentId that is no id');
  t.equal((await signal('go', 'fits')).statusCode, 202, 'a signal within the bounds is kept');
  t.match(await w.finished(id), { status: 'completed', output: 'fits' });
});

t.test('a flow of 500 nested steps is checked within a second; one more is refused', async (t) => {
  const condition = Array.from({ length: 40 }, (_, i) => `input.a${i} == ${i}`).join(' && ');
  const leaf = (key: string) => ({ key, if: condition, transform: { $eval: condition } });
  // 25 loops of 19 steps, each loop's first step a branch of a switch in a loop: 4 deep.
  const loops = Array.from({ length: 25 }, (_, l) => ({
    key: `loop${l}`,
    forEach: {
      items: condition,
      steps: [
        {
          key: `switch${l}`,
          switch: { cases: [{ if: condition, steps: [{ key: `inner${l}`, forEach: { items: condition, steps: [leaf(`deep${l}`)] } }] }] },
        },
        ...Array.from({ length: 15 }, (_, s) => leaf(`s${l}_${s}`)),
      ],
    },
  }));
  const steps = loops.flatMap((loop) => [loop, ...Array.from({ length: 1 }, (_, s) => leaf(`${loop.key}_after${s}`))]);
  const count = JSON.stringify(steps).match(/"key"/g)!.length;
  t.equal(count, 500);
  const started = Date.now();
  const written = await w.send({ method: 'POST', url: '/flows', payload: { name: 'Big', steps } });
  const took = Date.now() - started;
  t.ok([201, 422].includes(written.statusCode), `answered ${written.statusCode}`);
  t.ok(took < 1000, `checked in ${took} ms`);
  const more = await w.send({ method: 'POST', url: '/flows', payload: { name: 'Bigger', steps: [...steps, leaf('one_more')] } });
  t.equal(more.statusCode, 422);
  t.match(more.data.errors, [{ pointer: '/steps', message: /at most 500/ }]);
  const tooDeep = {
    key: 'l1',
    forEach: {
      items: '[1]',
      steps: [
        {
          key: 'l2',
          forEach: { items: '[1]', steps: [{ key: 'l3', forEach: { items: '[1]', steps: [{ key: 'l4', forEach: { items: '[1]', steps: [leaf('l5')] } }] } }] },
        },
      ],
    },
  };
  const deep = await w.send({ method: 'POST', url: '/flows', payload: { name: 'Deep', steps: [tooDeep] } });
  t.equal(deep.statusCode, 422);
  t.match(deep.data.errors, [{ message: /nested 5 deep/ }]);
});

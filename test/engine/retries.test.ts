// How steps fail and are tried again: which failures are retried, with what waits, how long an
// attempt may take, how large an answer may be, and what continueOnError changes.
import t from 'tap';
import { freePort } from '../../src/db/embedded.ts';
import { delayBefore } from '../../src/engine/kinds.ts';
import { world } from './world.ts';

const w = await world(t, { responseLimitBytes: 64 * 1024 });
const calls = (executionId: string, key: string) => w.target.received.filter((r) => r.headers['idempotency-key'] === `${executionId}:${key}`);

t.test('5xx answers are retried until one succeeds, each attempt logged', async (t) => {
  const flaky = await w.action({ endpoint: '/flaky/2/a' });
  const flow = await w.flow({ steps: [{ key: 'flaky', actionId: flaky, retry: { maxAttempts: 3, initialDelayMs: 20 } }] });
  const execution = await w.run(flow.id);
  t.match(execution, { status: 'completed', steps: [{ status: 'completed', attempts: 3, error: null, response: { status: 200 } }] });
  t.equal(calls(execution.id, 'flaky').length, 3);
  t.ok(
    calls(execution.id, 'flaky').every((call) => call.headers['idempotency-key'] === `${execution.id}:flaky`),
    'every attempt carries the same Idempotency-Key',
  );
});

t.test('a step that runs out of attempts fails the execution, naming the step', async (t) => {
  const flaky = await w.action({ endpoint: '/flaky/5/b' });
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'flaky', actionId: flaky, retry: { maxAttempts: 2, initialDelayMs: 10 } },
      { key: 'never', actionId: echo },
    ],
  });
  const execution = await w.run(flow.id);
  t.match(execution, {
    status: 'failed',
    output: null,
    error: { code: 'step-failed', step: 'flaky', message: 'Step flaky failed: The action answered 503.' },
    steps: [
      { key: 'flaky', status: 'failed', attempts: 2, response: { status: 503 }, error: { code: 'http-status' } },
      { key: 'never', status: 'not_run', attempts: 0, startedAt: null, finishedAt: null, request: null },
    ],
  });
  t.equal(calls(execution.id, 'never').length, 0);
});

t.test('other 4xx answers fail at once, without another attempt', async (t) => {
  for (const status of [400, 401, 404, 422]) {
    const refusing = await w.action({ endpoint: `/status/${status}` });
    const flow = await w.flow({ steps: [{ key: 'refused', actionId: refusing, retry: { maxAttempts: 5, initialDelayMs: 10 } }] });
    const execution = await w.run(flow.id);
    t.match(execution.steps[0], { status: 'failed', attempts: 1, response: { status, body: { error: `status ${status}` } } }, `${status}`);
    t.equal(calls(execution.id, 'refused').length, 1);
  }
  for (const status of [408, 500, 502]) {
    const failing = await w.action({ endpoint: `/status/${status}` });
    const flow = await w.flow({ steps: [{ key: 'failing', actionId: failing, retry: { maxAttempts: 2, initialDelayMs: 10 } }] });
    t.equal((await w.run(flow.id)).steps[0].attempts, 2, `${status} is retried`);
  }
});

t.test('429 waits at least what Retry-After asks for', async (t) => {
  const limited = await w.action({ endpoint: '/limited/1' });
  const flow = await w.flow({ steps: [{ key: 'limited', actionId: limited, retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 } }] });
  const started = Date.now();
  const execution = await w.run(flow.id);
  t.match(execution.steps[0], { status: 'completed', attempts: 2 });
  t.ok(Date.now() - started >= 1000, 'the second attempt came after the second Retry-After asked for, not after maxDelayMs');
});

t.test('an attempt that takes longer than timeoutMs is cut off, and retried', async (t) => {
  const slow = await w.action({ endpoint: '/slow/3000/c' });
  const flow = await w.flow({ steps: [{ key: 'slow', actionId: slow, timeoutMs: 200, retry: { maxAttempts: 2, initialDelayMs: 10 } }] });
  const execution = await w.run(flow.id);
  t.match(execution.steps[0], { status: 'failed', attempts: 2, response: null, error: { code: 'timeout', message: 'No complete answer within 200 ms.' } });
  t.ok(execution.steps[0].durationMs < 2000, 'not waited out');
});

t.test('a target that refuses connections is a network error, retried', async (t) => {
  const port = await freePort();
  const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Closed', baseUrl: `http://127.0.0.1:${port}` } });
  const action = await w.send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'x', key: `closed-${port}`, method: 'GET', endpoint: '/x' },
  });
  const flow = await w.flow({ steps: [{ key: 'closed', actionId: action.data.id, retry: { maxAttempts: 2, initialDelayMs: 10 } }] });
  const execution = await w.run(flow.id);
  t.match(execution.steps[0], { status: 'failed', attempts: 2, error: { code: 'network-error', message: /ECONNREFUSED/ } });
});

t.test('an answer over the size limit fails the step instead of filling memory', async (t) => {
  const huge = await w.action({ method: 'GET', endpoint: '/huge/200000' });
  const small = await w.action({ method: 'GET', endpoint: '/huge/1000' });
  const flow = await w.flow({
    steps: [
      { key: 'small', actionId: small },
      { key: 'huge', actionId: huge, retry: { maxAttempts: 3, initialDelayMs: 10 } },
    ],
  });
  const execution = await w.run(flow.id);
  t.match(execution.steps, [
    { key: 'small', status: 'completed' },
    { key: 'huge', status: 'failed', attempts: 1, response: null, error: { code: 'response-too-large', message: /larger than 65536 bytes/ } },
  ]);
});

t.test('continueOnError goes on to the next step, and the output is the last completed one', async (t) => {
  const failing = await w.action({ endpoint: '/status/404' });
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'first', actionId: echo, inputs: { n: 1 } },
      { key: 'optional', actionId: failing, continueOnError: true },
      { key: 'uses', actionId: echo, inputs: { status: { $eval: 'steps.optional.httpStatus' } } },
      { key: 'last', actionId: failing, continueOnError: true },
    ],
  });
  const execution = await w.run(flow.id);
  t.match(execution, {
    status: 'completed',
    error: null,
    steps: [{ status: 'completed' }, { status: 'failed' }, { status: 'completed' }, { status: 'failed' }],
  });
  t.same(execution.steps[2].request.body, { status: 404 }, 'a failed step is still visible to the next');
  t.same(execution.output, execution.steps[2].response.body);
});

t.test('waits between attempts double, with jitter, up to a cap', async (t) => {
  const retry = { initialDelayMs: 100, maxDelayMs: 1000 };
  for (let attempt = 2; attempt <= 6; attempt++) {
    const exponential = Math.min(1000, 100 * 2 ** (attempt - 2));
    for (let i = 0; i < 50; i++) {
      const delay = delayBefore(attempt, retry, {});
      t.ok(delay >= exponential / 2 && delay <= exponential, `attempt ${attempt}: ${delay} in [${exponential / 2}, ${exponential}]`);
    }
  }
  t.equal(delayBefore(2, retry, { retryAfterMs: 5000 }), 5000, 'Retry-After wins when longer');
  t.equal(delayBefore(2, retry, { retryAfterMs: 3_600_000 }), 300_000, 'but never more than 5 minutes');
});

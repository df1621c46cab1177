// Webhook intake under faults, with real processes: an API-only node takes deliveries while a
// worker process is killed (kill -9), and every 202 runs exactly once; PostgreSQL stalls or is
// killed during deliveries, and every answer is a prompt 202 or 503, every 202 runs, and a 503
// leaves the sender's retry (with its delivery id) to start the run exactly once.
import t, { type Test } from 'tap';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { startTarget } from '../engine/target.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer, startWorker, type WorkerProcess } from '../process.ts';
import { ownPostgres } from './postgres.ts';
import { allDeliveries, finishedRuns, notifyFlow, type Send, sleep, sql, tally, tenant } from './triggerScene.ts';

interface Delivered {
  marker: string;
  status: number | 'no answer';
  retryAfter: string | null;
  deliveryId?: string;
  executionId?: string;
  sentAt: number;
  ms: number;
}

/** POSTs `{ marker }` to the hook as a sender would (no API key), with the marker as the delivery id when asked. */
async function deliver(base: string, token: string, marker: string, { dedupe = false, patienceMs = 60_000 } = {}): Promise<Delivered> {
  const sentAt = Date.now();
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(dedupe && { 'x-delivery-id': marker }) };
  try {
    const response = await fetch(`${base}/hooks/${token}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ marker }),
      signal: AbortSignal.timeout(patienceMs),
    });
    const data = (await response.json()) as { deliveryId?: string; executionId?: string };
    const retryAfter = response.headers.get('retry-after');
    return { marker, status: response.status, retryAfter, deliveryId: data.deliveryId, executionId: data.executionId, sentAt, ms: Date.now() - sentAt };
  } catch {
    return { marker, status: 'no answer', retryAfter: null, sentAt, ms: Date.now() - sentAt };
  }
}

async function webhook(send: Send, flowId: string, settings: object = {}): Promise<{ id: string; token: string }> {
  const created = await send('POST', '/triggers', { flowId, name: 'Hook', type: 'webhook', webhook: settings });
  if (created.status !== 201) throw new Error(`creating the trigger failed: ${JSON.stringify(created.data)}`);
  return { id: created.data.id, token: created.data.webhook.token };
}

/** The step's inputs: the marker in the delivery's body. */
const MARKED = { marker: { $eval: 'input.body.marker' } };
const WORKER = { TOLSTOY_WORKER_CONCURRENCY: '10', TOLSTOY_ORG_CONCURRENCY: '100' };

t.test('an API-only node takes deliveries while a worker is killed with kill -9: every 202 runs exactly once', async (t) => {
  const url = await freshDatabaseUrl(t);
  const api = await startServer({ DATABASE_URL: url, TOLSTOY_WORKER: 'false' });
  t.teardown(() => api.process.kill('SIGKILL'));
  const workers: WorkerProcess[] = await Promise.all([startWorker({ DATABASE_URL: url, ...WORKER }), startWorker({ DATABASE_URL: url, ...WORKER })]);
  t.teardown(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  const target = await startTarget();
  t.teardown(() => target.close());
  const send = await tenant(api.base);
  // Slow enough that steps are in flight on the worker when it dies.
  const hook = await webhook(send, await notifyFlow(send, target.url, '/slow/300/hook', MARKED));

  const answers: Delivered[] = [];
  let replacement: Promise<WorkerProcess> | undefined;
  let runningAtKill = 0;
  for (let batch = 0; batch < 30; batch++) {
    const markers = Array.from({ length: 5 }, (_, i) => `delivery-${batch * 5 + i}`);
    answers.push(...(await Promise.all(markers.map((marker) => deliver(api.base, hook.token, marker)))));
    if (batch === 10) {
      const [counted] = await sql<{ running: number }>(url, "SELECT count(*)::int AS running FROM executions WHERE status = 'running'");
      runningAtKill = counted!.running;
      workers[0]!.process.kill('SIGKILL');
      replacement = startWorker({ DATABASE_URL: url, ...WORKER });
    }
  }
  workers.push(await replacement!);
  t.ok(runningAtKill > 0, `${runningAtKill} runs were running when the worker was killed`);

  t.same(
    answers.filter((answer) => answer.status !== 202).map((answer) => [answer.marker, answer.status]),
    [],
    `all ${answers.length} deliveries answered 202`,
  );
  const runOf = new Map(answers.map((answer) => [answer.executionId!, answer.marker]));
  t.equal(runOf.size, answers.length, 'each 202 names a run of its own');

  const runs = await finishedRuns(url, hook.id, 90_000);
  t.same(
    runs.filter((run) => run.status !== 'completed').map((run) => [run.id, run.status]),
    [],
    `all ${runs.length} runs completed`,
  );
  t.same(runs.map((run) => run.id).sort(), [...runOf.keys()].sort(), 'the trigger started exactly the runs its 202s named');
  t.same(
    runs.filter((run) => run.input.body.marker !== runOf.get(run.id)).map((run) => run.id),
    [],
    "each run has its delivery's body",
  );

  const calls = target.received.filter((request) => request.path === '/slow/300/hook');
  const callsPerRun = tally(calls.map((request) => request.headers['idempotency-key']!.replace(/:notify$/, '')));
  t.same(
    [...runOf.keys()].filter((id) => !callsPerRun.has(id)),
    [],
    'every accepted delivery reached the target',
  );
  t.equal(callsPerRun.size, answers.length, 'as many runs reached the target as deliveries were accepted');
  t.same(
    calls.filter((request) => runOf.get(request.headers['idempotency-key']!.replace(/:notify$/, '')) !== (request.body as { marker: string }).marker),
    [],
    "each call carries its own delivery's marker, under its run's Idempotency-Key",
  );
  const resent = [...callsPerRun.values()].filter((count) => count > 1).length;
  t.comment(`${resent} steps in flight at the kill were sent again, with the same Idempotency-Key`);

  const listed = await allDeliveries(send, hook.id);
  t.equal(listed.length, answers.length, 'one delivery listed per request');
  t.same(
    listed.filter((delivery) => delivery.outcome !== 'accepted' || runOf.get(delivery.executionId) !== delivery.body.marker),
    [],
    'each accepted, with its own run and body',
  );
  t.same(listed.map((delivery) => delivery.id).sort(), answers.map((answer) => answer.deliveryId).sort(), 'the ids the 202s gave');
});

// The longest a delivery may take while PostgreSQL does not answer: a connection (1 s) or a
// statement (1 s, and the stall guard's second), a few of them, and much room for a busy machine.
const ANSWER_BOUND_MS = 15_000;
const SENDERS = 4;

/**
 * A 503 says the outcome is unknown, as any lost connection does: a COMMIT that reached
 * PostgreSQL just before it stopped commits (on resuming, or already on disk before the kill)
 * though its answer never came. So the sender retries a 503 with the same delivery id, and the
 * run starts once whichever way it went. Such a run can only belong to a request that was in
 * flight when the fault began: a request begun after it never gets as far as a COMMIT.
 */
async function deliveriesThrough(t: Test, fault: 'stalled' | 'killed') {
  const postgres = await ownPostgres(t, { durable: true });
  const api = await startServer({
    DATABASE_URL: postgres.url,
    DATABASE_CONNECT_TIMEOUT_MS: '1000',
    DATABASE_STATEMENT_TIMEOUT_MS: '1000',
    // Refusals come fast while PostgreSQL is down: the senders must not meet the trigger's rate limit instead.
    TOLSTOY_RATE_LIMIT_WEBHOOKS_PER_TRIGGER: '0',
  });
  t.teardown(() => api.process.kill('SIGKILL'));
  const target = await startTarget();
  t.teardown(() => target.close());
  const send = await tenant(api.base);
  const hook = await webhook(send, await notifyFlow(send, target.url, '/echo/hook', MARKED), { dedupe: { header: 'X-Delivery-Id' } });

  const answers: Delivered[] = [];
  let sending = true;
  let sent = 0;
  const senders = Array.from({ length: SENDERS }, async () => {
    while (sending) {
      answers.push(await deliver(api.base, hook.token, `delivery-${sent++}`, { dedupe: true, patienceMs: ANSWER_BOUND_MS }));
      await sleep(50);
    }
  });
  await sleep(1000);
  if (fault === 'stalled') postgres.stall();
  else postgres.kill();
  // Taken once PostgreSQL has the signal: a request sent later had no COMMIT on its way when it stopped.
  const faultAt = Date.now();
  await sleep(5000);
  if (fault === 'stalled') postgres.resume();
  else {
    // The same cluster started again, on the same port: the server's pools reconnect by themselves.
    const restarted = await startEmbeddedPostgres({ dataDir: postgres.dataDir, port: Number(new URL(postgres.url).port) });
    t.teardown(() => restarted.stop());
  }
  const backAt = Date.now();
  await sleep(3000);
  sending = false;
  await Promise.all(senders);

  const unexpected = answers.filter((answer) => answer.status !== 202 && !(answer.status === 503 && answer.retryAfter === '1'));
  t.same(
    unexpected.map((answer) => [answer.marker, answer.status]),
    [],
    `each of ${answers.length} answers is a 202, or a 503 with Retry-After`,
  );
  if (unexpected.length > 0) t.comment(`what the server logged of them:\n${failuresLogged(api.output())}`);
  const slowest = Math.max(...answers.map((answer) => answer.ms));
  t.ok(slowest < ANSWER_BOUND_MS, `none took longer than ${ANSWER_BOUND_MS} ms (the slowest ${slowest} ms)`);
  const refused = answers.filter((answer) => answer.status === 503);
  t.ok(refused.length > 0, `${refused.length} deliveries answered 503 while PostgreSQL was ${fault}`);
  t.ok(
    answers.some((answer) => answer.status === 202 && answer.sentAt > backAt),
    'deliveries are accepted again once it is back',
  );

  const committed = new Set((await sql<{ marker: string }>(postgres.url, MARKERS, [hook.id])).map((row) => row.marker));
  const inDoubt = refused.filter((answer) => committed.has(answer.marker));
  t.same(
    inDoubt.filter((answer) => answer.sentAt >= faultAt).map((answer) => answer.marker),
    [],
    'a 503 left a run behind only for a request already in flight when the fault began',
  );
  t.ok(inDoubt.length <= SENDERS, `at most one request per sender was in doubt (${inDoubt.length})`);

  // The senders retry each 503 with the same delivery id, as a 503 asks (PostgreSQL has been back for seconds).
  const retried: Delivered[] = [];
  const toRetry = [...refused];
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      for (let answer = toRetry.shift(); answer; answer = toRetry.shift()) retried.push(await retry(api.base, hook.token, answer));
    }),
  );
  t.same(
    retried.filter((answer) => answer.status !== 202).map((answer) => [answer.marker, answer.status]),
    [],
    `each of the ${refused.length} refused deliveries was accepted when retried`,
  );
  const accepted = [...answers.filter((answer) => answer.status === 202), ...retried];
  t.equal(new Set(accepted.map((answer) => answer.marker)).size, answers.length, 'every delivery was accepted in the end');

  const runs = await finishedRuns(postgres.url, hook.id, 90_000);
  t.same(
    runs.filter((run) => run.status !== 'completed').map((run) => [run.id, run.status]),
    [],
    `every run completed (${runs.length})`,
  );
  const runsPerMarker = tally(runs.map((run) => run.input.body.marker));
  t.same(
    answers.filter((answer) => runsPerMarker.get(answer.marker) !== 1).map((answer) => [answer.marker, answer.status, runsPerMarker.get(answer.marker) ?? 0]),
    [],
    'each delivery started exactly one run',
  );
  t.equal(runs.length, answers.length, 'no run without a delivery');
  const runOf = new Map(runs.map((run) => [run.input.body.marker as string, run.id]));
  t.same(
    accepted.filter((answer) => runOf.get(answer.marker) !== answer.executionId).map((answer) => answer.marker),
    [],
    'every 202 named the run that ran',
  );
  t.comment(`${answers.length} deliveries, ${refused.length} answered 503, of which ${inDoubt.length} had committed (retried as duplicates)`);
}

/** Sends a refused delivery again until it is answered otherwise, waiting each 503's Retry-After (at most 5 times). */
async function retry(base: string, token: string, refused: Delivered): Promise<Delivered> {
  let answer = await deliver(base, token, refused.marker, { dedupe: true });
  for (let attempt = 1; attempt < 5 && answer.status === 503; attempt++) {
    await sleep(Number(answer.retryAfter) * 1000);
    answer = await deliver(base, token, refused.marker, { dedupe: true });
  }
  return answer;
}

/** The errors a server logged as its own faults (500s), one per line. */
function failuresLogged(output: string): string {
  return output
    .split('\n')
    .filter((line) => line.includes('"request failed"'))
    .join('\n');
}

const MARKERS = "SELECT input::jsonb->'body'->>'marker' AS marker FROM executions WHERE trigger_id = $1";

t.test('PostgreSQL stalled (SIGSTOP) during deliveries: 202 or a prompt 503, and every 202 runs', (t) => deliveriesThrough(t, 'stalled'));

t.test('PostgreSQL killed (kill -9) during deliveries and restarted: 202 or a prompt 503, and every 202 runs', (t) => deliveriesThrough(t, 'killed'));

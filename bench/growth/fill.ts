// The growth benchmark's history, written in bulk with SQL (not through the API): executions of
// the three-step flows over `days` days, spread over the organizations, each with its three step
// runs and the logs the engine writes, as a real run leaves them (the same columns filled, the same
// sizes of request, response and log); a webhook delivery for each run of the webhook flow and an
// event delivery for each of its ends. Ids are UUIDv7 made at each row's creation time
// (`uuidv7(shift)`), so that id order follows time as it does in production. Rows are inserted in
// time order, oldest first, in batches of a temporary table each.
import type pg from 'pg';

/** What the fill needs of an organization: its ids as the API created them. */
export interface HistoryTenant {
  orgId: string;
  userId: string;
  actionId: string;
  /** The three-step flow that scenario B starts through the API. */
  chainFlowId: string;
  /** The same three steps, started by a webhook trigger, whose ends a subscription hears. */
  webhookFlowId: string;
  triggerId: string;
  subscriptionId: string;
}

export interface FillPlan {
  executions: number;
  days: number;
  batch: number;
  /** The echo server's URL, as the steps' requests name it. */
  echoUrl: string;
}

export interface FillFigures {
  seconds: number;
  analyzeSeconds: number;
  rows: Record<string, number>;
}

/** Of every 1,000 runs: how many failed and were cancelled; the rest completed. */
export const FAILED_PER_MILLE = 40;
export const CANCELLED_PER_MILLE = 10;

/** One batch: a temporary table of the runs to write, then every table's rows from it. */
function batchStatements(plan: FillPlan): string[] {
  const headers = (length: string) =>
    `'{"content-type":"application/json","content-length":"' || ${length} || '","date":"' || to_char(b.created_at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || ' GMT","connection":"keep-alive","keep-alive":"timeout=60"}'`;
  const request = (key: string, text: string) =>
    `'{"method":"POST","url":"${plan.echoUrl}/echo","headers":{"idempotency-key":"' || b.id || ':${key}","user-agent":"Tolstoy","content-type":"application/json"},"body":{"text":"' || ${text} || '"}}'`;
  const response = (status: number, text: string) =>
    `'{"status":${status},"headers":' || ${headers(`octet_length(${text}) + 11`)} || ',"body":{"text":"' || ${text} || '"}}'`;
  const stepFailure = `'{"code":"http-status","message":"POST ${plan.echoUrl}/echo answered 500 Internal Server Error (3 attempts)"}'`;
  const failure = `'{"code":"step-failed","message":"Step two failed: POST ${plan.echoUrl}/echo answered 500 Internal Server Error (3 attempts)","step":"two"}'`;
  const texts = { one: 'b.text', two: "b.text || ', twice'", three: "b.text || ', twice, thrice'" };
  return [
    `CREATE TEMP TABLE b ON COMMIT DROP AS
     SELECT i, t.*, uuidv7(created_at - clock_timestamp()) AS id, uuidv7(created_at - clock_timestamp()) AS delivery_id, 'hist-' || i AS text,
       CASE WHEN spread < ${FAILED_PER_MILLE} THEN 'failed' WHEN spread < ${FAILED_PER_MILLE + CANCELLED_PER_MILLE} THEN 'cancelled' ELSE 'completed' END AS status,
       created_at + interval '1 ms' * (5 + i % 40) AS started_at,
       created_at + interval '1 ms' * (20 + i % 90) AS one_at,
       created_at + interval '1 ms' * (40 + i % 130) AS two_at,
       created_at + interval '1 ms' * (60 + i % 170) AS three_at
     FROM generate_series($1::int, $2::int - 1) i,
       -- The organization's own count of runs (i / n) picks the flow and, scattered, the status.
       LATERAL (SELECT o.*, (i / o.n) % 2 = 1 AS hooked, (i / o.n) * 7919 % 1000 AS spread,
         $3::timestamptz + ($4::float8 * i / $5::float8) * interval '1 day' AS created_at
         FROM json_to_recordset($6::json) AS o(n int, k int, "orgId" uuid, "userId" uuid, "actionId" uuid, "chainFlowId" uuid, "webhookFlowId" uuid, "triggerId" uuid, "subscriptionId" uuid)
         WHERE o.k = i % o.n) t`,
    `INSERT INTO executions (id, org_id, flow_id, flow_version, status, input, output, error, trigger, created_by, trigger_id, created_at, started_at, finished_at, updated_at)
     SELECT id, "orgId", CASE WHEN hooked THEN "webhookFlowId" ELSE "chainFlowId" END, 1, status::execution_state,
       '{"text":"' || text || '"}',
       CASE WHEN status = 'completed' THEN '{"text":"' || ${texts.three} || '"}' END,
       CASE WHEN status = 'failed' THEN ${failure} END,
       CASE WHEN hooked THEN '{"type":"webhook","id":"' || "triggerId" || '","deliveryId":"' || delivery_id || '"}'
         ELSE '{"type":"api","userId":"' || "userId" || '"}' END,
       CASE WHEN hooked THEN NULL ELSE "userId" END, CASE WHEN hooked THEN "triggerId" END,
       created_at, started_at, CASE WHEN status = 'completed' THEN three_at ELSE two_at END, CASE WHEN status = 'completed' THEN three_at ELSE two_at END
     FROM b`,
    `INSERT INTO execution_steps (execution_id, path, position, org_id, key, kind, action_id, status, attempts, started_at, finished_at, duration_ms, request, response, error)
     SELECT b.id, s.key, s.position, "orgId", s.key, 'action', "actionId", s.status::step_state, s.attempts, s.started, s.finished,
       (extract(epoch FROM s.finished - s.started) * 1000)::int, s.request, s.response, s.error
     FROM b, LATERAL (VALUES
       ('one', 0, 'completed', 1, started_at, one_at, ${request('one', texts.one)}, ${response(200, texts.one)}, NULL),
       ('two', 1, CASE status WHEN 'completed' THEN 'completed' ELSE status END, CASE status WHEN 'failed' THEN 3 ELSE 1 END, one_at,
         CASE WHEN status = 'cancelled' THEN NULL ELSE two_at END, ${request('two', texts.two)},
         CASE status WHEN 'completed' THEN ${response(200, texts.two)} WHEN 'failed' THEN ${response(500, texts.two)} END,
         CASE WHEN status = 'failed' THEN ${stepFailure} END),
       ('three', 2, CASE WHEN status = 'completed' THEN 'completed' ELSE 'not_run' END, CASE WHEN status = 'completed' THEN 1 ELSE 0 END,
         CASE WHEN status = 'completed' THEN two_at END, CASE WHEN status = 'completed' THEN three_at END,
         CASE WHEN status = 'completed' THEN ${request('three', texts.three)} END, CASE WHEN status = 'completed' THEN ${response(200, texts.three)} END, NULL)
     ) AS s(key, position, status, attempts, started, finished, request, response, error)`,
    // One log per attempt the engine settled: a failed step's three attempts, a cancelled step's end.
    `INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, outputs, error, duration_ms, written_by_engine, created_at, updated_at)
     SELECT uuidv7(l.at - clock_timestamp()), "orgId", CASE WHEN hooked THEN "webhookFlowId" ELSE "chainFlowId" END, CASE WHEN hooked THEN NULL ELSE "userId" END,
       b.id::text, l.key, l.status::execution_status, '{"text":"' || l.text || '"}', l.outputs, l.error, l.duration, true, l.at, l.at
     FROM b, LATERAL (VALUES
       ('one', 'completed', ${texts.one}, ${response(200, texts.one)}, NULL, one_at, 20),
       ('two', 'completed', ${texts.two}, ${response(200, texts.two)}, NULL, two_at, 15),
       ('three', 'completed', ${texts.three}, ${response(200, texts.three)}, NULL, three_at, 12),
       ('two', 'failed', ${texts.two}, ${response(500, texts.two)}, ${stepFailure}, two_at - interval '2 ms', 9),
       ('two', 'cancelled', ${texts.two}, NULL, '{"code":"cancelled","message":"The execution was cancelled"}', two_at, 5)
     ) AS l(key, status, text, outputs, error, at, duration), generate_series(1, CASE WHEN l.status = 'failed' THEN 3 ELSE 1 END) attempt
     WHERE (l.key = 'one') OR (b.status = 'completed' AND l.status = 'completed') OR (b.status = l.status AND l.key = 'two')`,
    `INSERT INTO trigger_deliveries (id, org_id, trigger_id, outcome, execution_id, dedupe_key, headers, query, body, created_at)
     SELECT delivery_id, "orgId", "triggerId", 'accepted', id, 'evt_' || i,
       '{"content-type":"application/json","user-agent":"Stripe/1.0 (+https://stripe.com/docs/webhooks)","webhook-id":"evt_' || i || '","accept":"*/*"}',
       '{}', '{"text":"' || text || '"}', created_at
     FROM b WHERE hooked`,
    `INSERT INTO event_deliveries (id, org_id, subscription_id, execution_id, event, payload, status, attempts, last_status, next_attempt_at, created_at, delivered_at)
     SELECT uuidv7(at - clock_timestamp()), "orgId", "subscriptionId", id, 'execution.' || status,
       json_build_object('type', 'execution.' || status, 'timestamp', at, 'data', json_build_object('id', id, 'flowId', "webhookFlowId", 'flowVersion', 1,
         'status', status, 'trigger', json_build_object('type', 'webhook', 'id', "triggerId", 'deliveryId', delivery_id), 'parent', NULL, 'error', CASE WHEN status = 'failed' THEN ${failure}::json END,
         'output', CASE WHEN status = 'completed' THEN json_build_object('text', ${texts.three}) END, 'outputOmitted', false,
         'createdAt', created_at, 'startedAt', started_at, 'finishedAt', at))::text,
       'delivered', 1, 200, NULL, at, at + interval '30 ms'
     FROM (SELECT *, CASE WHEN status = 'completed' THEN three_at ELSE two_at END AS at FROM b WHERE hooked AND status <> 'cancelled') b`,
  ];
}

/** Writes the history; answers how long it took and how many rows each table holds. */
export async function fillHistory(
  client: pg.Client,
  tenants: HistoryTenant[],
  plan: FillPlan,
  progress: (done: number) => void = () => {},
): Promise<FillFigures> {
  const organizations = JSON.stringify(tenants.map((tenant, k) => ({ ...tenant, n: tenants.length, k })));
  const { rows } = await client.query<{ start: Date }>(`SELECT now() - $1::float8 * interval '1 day' AS start`, [plan.days]);
  const start = rows[0]!.start;
  const statements = batchStatements(plan);
  const began = performance.now();
  // A bulk load as pg_restore makes one: the rows are consistent by construction, so the foreign
  // keys' and triggers' checks are skipped (replica role), and commits are not awaited one by one.
  await client.query(`SET session_replication_role = replica`);
  await client.query(`SET synchronous_commit = off`);
  for (let lo = 0; lo < plan.executions; lo += plan.batch) {
    const hi = Math.min(plan.executions, lo + plan.batch);
    await client.query('BEGIN');
    await client.query(statements[0]!, [lo, hi, start, plan.days, plan.executions, organizations]);
    for (const statement of statements.slice(1)) await client.query(statement);
    await client.query('COMMIT');
    progress(hi);
  }
  await client.query(`RESET session_replication_role`);
  await client.query(`RESET synchronous_commit`);
  const seconds = (performance.now() - began) / 1000;
  const analyzing = performance.now();
  await client.query(`ANALYZE executions, execution_steps, execution_logs, trigger_deliveries, event_deliveries`);
  return { seconds: round(seconds), analyzeSeconds: round((performance.now() - analyzing) / 1000), rows: await rowCounts(client) };
}

export const HISTORY_TABLES = ['executions', 'execution_steps', 'execution_logs', 'trigger_deliveries', 'event_deliveries'] as const;

export async function rowCounts(client: pg.Client): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of HISTORY_TABLES) counts[table] = Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  return counts;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

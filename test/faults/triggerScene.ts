// What the trigger fault tests share: a tenant talking to a real server process over HTTP, a
// one-step flow that calls the target, SQL straight at the database (each query on a connection
// of its own, so that one opened before a fault is never reused after it), and polling.
import pg from 'pg';

export interface Answer {
  status: number;
  headers: Headers;
  data: any;
}

export type Send = (method: string, path: string, body?: object, headers?: Record<string, string>) => Promise<Answer>;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A member of a new organization on the server at `base` (tenant headers, as a development server takes them). */
export async function tenant(base: string): Promise<Send> {
  const request: Send = async (method, path, body, headers = {}) => {
    const response = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: body && JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, headers: response.headers, data: text === '' ? undefined : JSON.parse(text) };
  };
  const org = await request('POST', '/organizations', { name: 'Triggers', owner: { email: 'owner@example.com' } });
  if (org.status !== 201) throw new Error(`creating a tenant failed: ${JSON.stringify(org.data)}`);
  const member = { 'x-org-id': org.data.id, 'x-user-id': org.data.owner.id };
  return (method, path, body, headers = {}) => request(method, path, body, { ...member, ...headers });
}

/** A flow of one step, `notify`, that POSTs `inputs` to `endpoint` of the target (`Idempotency-Key: <executionId>:notify`). */
export async function notifyFlow(send: Send, targetUrl: string, endpoint: string, inputs: object): Promise<string> {
  const tool = await send('POST', '/tools', { name: 'Target', baseUrl: targetUrl });
  const action = await send('POST', '/actions', { toolId: tool.data.id, name: 'notify', key: 'notify', method: 'POST', endpoint });
  const flow = await send('POST', '/flows', { name: 'Notify', steps: [{ key: 'notify', actionId: action.data.id, inputs }] });
  if (flow.status !== 201) throw new Error(`creating the flow failed: ${JSON.stringify(flow.data)}`);
  return flow.data.id;
}

/** Every delivery of a trigger, oldest first, page after page. */
export async function allDeliveries(send: Send, triggerId: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const page = await send('GET', `/triggers/${triggerId}/deliveries?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    if (page.status !== 200) throw new Error(`listing deliveries failed: ${JSON.stringify(page.data)}`);
    items.push(...page.data.items);
    cursor = page.data.nextCursor;
  } while (cursor);
  return items.reverse();
}

export async function sql<Row>(url: string, text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text, values)).rows as Row[];
  } finally {
    await client.end();
  }
}

/** The runs a trigger started, once none is queued or running (polling, up to `ms`). */
export async function finishedRuns(url: string, triggerId: string, ms: number): Promise<{ id: string; status: string; trigger: any; input: any }[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = await sql<{ id: string; status: string; trigger: any; input: any }>(
      url,
      'SELECT id, status::text, trigger::jsonb AS trigger, input::jsonb AS input FROM executions WHERE trigger_id = $1',
      [triggerId],
    );
    const unfinished = rows.filter((row) => row.status === 'queued' || row.status === 'running');
    if (unfinished.length === 0) return rows;
    if (Date.now() > deadline) throw new Error(`${unfinished.length} of ${rows.length} runs unfinished after ${ms} ms`);
    await sleep(250);
  }
}

/** How many of `values` each value is. */
export function tally(values: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

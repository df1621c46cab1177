// The growth benchmark's organizations: bench/engine's (tool, action, the flows of its scenarios),
// each with what a history of webhook runs needs besides, made through the API too: a second
// three-step flow, a webhook trigger that starts it, and a subscription to its runs' ends; and
// their retention at its longest.
import pg from 'pg';
import { setUpTenants, type Tenant } from '../engine/tolstoy.ts';
import type { HistoryTenant } from './fill.ts';

export type GrowthTenant = Tenant & HistoryTenant;

/** The longest retention an organization may have (the default, 30 days, would prune the history while it is measured). */
const KEEP_ALL_DAYS = 400;

async function post(base: string, path: string, key: string, body: unknown): Promise<any> {
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Sets every organization's retention (owners' keys, as the API allows). */
export async function setRetention(base: string, organizations: { orgId: string; key: string }[], days: number): Promise<void> {
  for (const probe of organizations) {
    const response = await fetch(`${base}/organizations/${probe.orgId}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json', authorization: `Bearer ${probe.key}` },
      body: JSON.stringify({ retention: { executionsDays: days } }),
    });
    if (response.status !== 200) throw new Error(`PATCH /organizations/${probe.orgId} answered ${response.status}: ${await response.text()}`);
  }
}

export async function setUpGrowthTenants(base: string, echoUrl: string, databaseUrl: string, count: number): Promise<GrowthTenant[]> {
  const tenants = await setUpTenants(base, echoUrl, count, { loopItems: 10, loopConcurrency: 2, napMs: 100 });
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const grown: GrowthTenant[] = [];
    for (const tenant of tenants) {
      const { rows } = await client.query<{ orgId: string; userId: string; actionId: string }>(
        `SELECT f.org_id AS "orgId", u.id AS "userId", a.id AS "actionId"
         FROM flows f JOIN users u ON u.org_id = f.org_id JOIN actions a ON a.org_id = f.org_id WHERE f.id = $1`,
        [tenant.chainFlowId],
      );
      const ids = rows[0]!;
      const action = { actionId: ids.actionId };
      const flow = await post(base, '/flows', tenant.key, {
        name: 'Three steps, from a webhook',
        steps: [
          { key: 'one', ...action, inputs: { text: { $eval: 'input.body.text' } } },
          { key: 'two', ...action, inputs: { text: '${steps.one.output.text}, twice' } },
          { key: 'three', ...action, inputs: { text: '${steps.two.output.text}, thrice' } },
        ],
      });
      const trigger = await post(base, '/triggers', tenant.key, {
        flowId: flow.id,
        name: 'Payments',
        type: 'webhook',
        webhook: { dedupe: { header: 'webhook-id' } },
      });
      const subscription = await post(base, '/subscriptions', tenant.key, {
        url: `${echoUrl}/events`,
        events: ['execution.completed', 'execution.failed'],
        flowId: flow.id,
      });
      grown.push({ ...tenant, ...ids, webhookFlowId: flow.id, triggerId: trigger.id, subscriptionId: subscription.id });
    }
    // The maintenance job prunes every 10 minutes: until the prune is measured, nothing is old enough.
    await setRetention(base, grown, KEEP_ALL_DAYS);
    return grown;
  } finally {
    await client.end();
  }
}

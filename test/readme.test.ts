// The README's curl examples, run as they are written against a freshly started server; only
// the port and the placeholder ids are filled in, and a value changed where the README says to.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { freePort } from '../src/db/embedded.ts';
import { ADMIN_TOKEN, buildTestApp, testAuth } from './helper.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const examples = [...readme.matchAll(/```bash\n(curl [^`]+?)```/g)].map((match) => match[1]!.trim());
// The webhook's delivery, signed in the shell before its curl.
const [delivery] = [...readme.matchAll(/```bash\n(body=[^`]+?)```/g)].map((match) => match[1]!.trim());

t.test('the README shows the original three curl examples, the first flow in five steps, the production way, control flow, then subscriptions', async (t) => {
  t.equal(examples.length, 39);
  t.match(delivery, /curl -X POST "your-webhook-url"/);
  t.match(examples[0], /POST http:\/\/localhost:3000\/organizations/);
  t.match(examples[1], /POST http:\/\/localhost:3000\/users[\s\S]*X-Org-ID: your-org-id[\s\S]*X-User-ID: your-user-id/);
  t.match(examples[2], /POST http:\/\/localhost:3000\/tools[\s\S]*X-Org-ID: your-org-id/);
  t.match(examples[16], /POST http:\/\/localhost:3000\/actions[\s\S]*"name":"Invite a member"/);
});

const tenantOf = (ids: Record<string, string>) => ({ 'x-org-id': ids['your-org-id']!, 'x-user-id': ids['your-user-id']! });

/** Runs an example against the server on `port`, its placeholders filled in by `ids`. */
async function run(port: number, example: string, ids: Record<string, string>) {
  let command = example.replaceAll('http://localhost:3000', `http://127.0.0.1:${port}`);
  for (const [placeholder, id] of Object.entries(ids)) command = command.replaceAll(placeholder, id);
  const env = { ...process.env, TOLSTOY_ADMIN_TOKEN: ADMIN_TOKEN };
  const { stdout } = await promisify(execFile)('sh', ['-c', `${command} -s -w '\\n%{http_code}'`], { env });
  const [body, status] = [stdout.slice(0, stdout.lastIndexOf('\n')), stdout.slice(stdout.lastIndexOf('\n') + 1)];
  return { status: Number(status), body: body === '' ? undefined : JSON.parse(body) };
}

/** A server as `npm start` runs it in development (tenant headers, a worker), and its port. */
async function developmentServer(t: Test) {
  const { app } = await buildTestApp(t, { worker: true });
  const port = await freePort();
  await app.listen({ port, host: '127.0.0.1' });
  return { app, port };
}

/** "First calls" and "Run your first flow", run in order and checked: the ids they name. */
async function firstFlow(t: Test, port: number) {
  const organization = await run(port, examples[0]!, {});
  t.equal(organization.status, 201, JSON.stringify(organization.body));
  const ids = { 'your-org-id': organization.body.id, 'your-user-id': organization.body.owner.id };
  const user = await run(port, examples[1]!, ids);
  t.equal(user.status, 201, JSON.stringify(user.body));
  t.equal(user.body.email, 'user@example.com');
  const tool = await run(port, examples[2]!, ids);
  t.equal(tool.status, 201, JSON.stringify(tool.body));
  t.match(tool.body, { name: 'Slack API', authType: 'bearer', orgId: ids['your-org-id'] });

  // "Run your first flow", step by step.
  const itself = await run(port, examples[3]!, ids);
  t.equal(itself.status, 201, JSON.stringify(itself.body));
  const withTool = { ...ids, 'your-tool-id': itself.body.id };
  const get = await run(port, examples[4]!, withTool);
  t.equal(get.status, 201, JSON.stringify(get.body));
  const rename = await run(port, examples[5]!, withTool);
  t.equal(rename.status, 201, JSON.stringify(rename.body));
  const withActions = { ...withTool, 'your-get-action-id': get.body.id, 'your-rename-action-id': rename.body.id };
  const flow = await run(port, examples[6]!, withActions);
  t.equal(flow.status, 201, JSON.stringify(flow.body));
  t.match(flow.body.steps, [{ key: 'read' }, { key: 'rename', inputs: { name: '${steps.read.output.name}, run by Tolstoy' } }]);
  const withFlow = { ...withActions, 'your-flow-id': flow.body.id };
  const started = await run(port, examples[7]!, withFlow);
  t.equal(started.status, 200, JSON.stringify(started.body));
  t.match(started.body, { status: 'completed', output: { id: ids['your-org-id'], name: 'My Organization, run by Tolstoy' } });
  const read = await run(port, examples[8]!, { ...ids, 'your-execution-id': started.body.id });
  t.equal(read.status, 200);
  t.match(read.body.steps, [
    { key: 'read', status: 'completed', request: { method: 'GET' }, response: { status: 200, body: { name: 'My Organization' } } },
    { key: 'rename', status: 'completed', request: { method: 'PUT', body: { name: 'My Organization, run by Tolstoy' } }, response: { status: 200 } },
  ]);
  return withFlow;
}

t.test('they work against a fresh start, in order', async (t) => {
  const { app, port } = await developmentServer(t);
  const withActions = await firstFlow(t, port);
  const ids = { 'your-org-id': withActions['your-org-id'], 'your-user-id': withActions['your-user-id'] };

  // "Start flows from webhooks and schedules".
  const hookFlow = await run(port, examples[9]!, withActions);
  t.equal(hookFlow.status, 201, JSON.stringify(hookFlow.body));
  const withHookFlow = { ...withActions, 'your-hook-flow-id': hookFlow.body.id };
  const hook = await run(port, examples[10]!, withHookFlow);
  t.equal(hook.status, 201, JSON.stringify(hook.body));
  t.match(hook.body.webhook, { url: new RegExp(`^http://127\\.0\\.0\\.1:${port}/hooks/wh_`), signature: { scheme: 'hmac-sha256' } });
  const sent = await run(port, delivery!, { ...ids, 'your-webhook-url': hook.body.webhook.url });
  t.equal(sent.status, 202, JSON.stringify(sent.body));
  const ran = await app.inject({ method: 'GET', url: `/executions/${sent.body.executionId}`, headers: { ...tenantOf(ids), prefer: 'wait=10' } });
  t.match(ran.json(), { status: 'completed', trigger: { type: 'webhook', id: hook.body.id }, steps: [{ response: { body: { id: ids['your-org-id'] } } }] });
  const nightly = await run(port, examples[11]!, withHookFlow);
  t.equal(nightly.status, 201, JSON.stringify(nightly.body));
  t.match(nightly.body.schedule, { cron: '* * * * *', timezone: 'Europe/Berlin', input: { body: { orgId: ids['your-org-id'] } } });
  t.ok(Date.parse(nightly.body.schedule.nextFireAt) > Date.now() - 1000, 'its next slot is ahead');
});

t.test('the production way works as written: API keys required, sign-up closed to all but the operator', async (t) => {
  const { app } = await buildTestApp(t, {}, undefined, testAuth('keys', { signup: false }));
  const port = await freePort();
  await app.listen({ port, host: '127.0.0.1' });
  const organization = await run(port, examples[12]!, {});
  t.equal(organization.status, 201, JSON.stringify(organization.body));
  t.match(organization.body, { owner: { role: 'owner' }, apiKey: { key: /^tsk_/ } });
  const ids = { 'your-api-key': organization.body.apiKey.key };
  const tools = await run(port, examples[13]!, ids);
  t.same([tools.status, tools.body.items], [200, []]);
  const created = await run(port, examples[14]!, ids);
  t.equal(created.status, 201, JSON.stringify(created.body));
  t.match(created.body, { name: 'CI pipeline', expiresAt: '2030-01-01T00:00:00.000Z', key: /^tsk_/ });
  t.equal((await run(port, examples[15]!, { ...ids, 'your-key-id': created.body.id })).status, 204);
  const refused = await run(port, examples[13]!, { 'your-api-key': created.body.key });
  t.equal(refused.status, 401, 'the revoked key is refused');
  t.equal((await run(port, examples[12]!.replace(/\n\s*-H "Authorization[^\n]*/, ''), {})).status, 401, 'sign-up without the operator token is');
});

type StepRun = { path: string; kind: string; status: string; startedAt: string; finishedAt: string; [field: string]: unknown };
const byPath = (execution: { steps: StepRun[] }) => new Map(execution.steps.map((step) => [step.path, step]));

/** Waits until the step run at `path` of the execution is `waiting`, and answers it. */
async function waitingStep(app: FastifyInstance, ids: Record<string, string>, executionId: string, path: string): Promise<StepRun | undefined> {
  for (let tries = 0; tries < 200; tries++) {
    const seen = (await app.inject({ method: 'GET', url: `/executions/${executionId}`, headers: tenantOf(ids) })).json();
    const step = byPath(seen).get(path);
    if (step?.status === 'waiting') return step;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return undefined;
}

t.test('the control flow examples work as written, after the first flow', async (t) => {
  const { app, port } = await developmentServer(t);
  const first = await firstFlow(t, port);
  const invite = await run(port, examples[16]!, first);
  t.equal(invite.status, 201, JSON.stringify(invite.body));
  t.match(invite.body, { method: 'POST', endpoint: '/users', headers: { 'X-Org-ID': first['your-org-id'], 'X-User-ID': first['your-user-id'] } });
  const members = await run(port, examples[17]!, first);
  t.equal(members.status, 201, JSON.stringify(members.body));
  const ids: Record<string, string> = { ...first, 'your-invite-action-id': invite.body.id, 'your-members-action-id': members.body.id };

  // Transform.
  const describe = await run(port, examples[18]!, ids);
  t.equal(describe.status, 201, JSON.stringify(describe.body));
  ids['your-describe-flow-id'] = describe.body.id;
  const card = await run(port, examples[19]!, ids);
  t.equal(card.status, 200, JSON.stringify(card.body));
  t.same(card.body.output, { name: 'My Organization, run by Tolstoy', shout: 'MY ORGANIZATION, RUN BY TOLSTOY', letters: 31 });
  t.match(byPath(card.body).get('card'), { kind: 'transform', status: 'completed', request: null, response: null });

  // Switch: the first case, then the default.
  const route = await run(port, examples[20]!, ids);
  t.equal(route.status, 201, JSON.stringify(route.body));
  ids['your-route-flow-id'] = route.body.id;
  const pro = await run(port, examples[21]!, ids);
  t.equal(pro.status, 200, JSON.stringify(pro.body));
  t.same(pro.body.output, { case: 0, text: 'Welcome back, My Organization, run by Tolstoy' });
  t.same([...byPath(pro.body).keys()].sort(), ['answer', 'route', 'route.vip', 'route.welcome']);
  t.match(byPath(pro.body).get('route'), { kind: 'switch', case: 0 });
  const free = await run(port, examples[21]!.replace('"plan":"pro"', '"plan":"free"'), ids);
  t.same(free.body.output, { case: 'default', text: 'Hello, free plan' });
  t.same([...byPath(free.body).keys()].sort(), ['answer', 'route', 'route.hello']);

  // forEach: three invitations, two at a time; run again, every one is refused.
  const team = await run(port, examples[22]!, ids);
  t.equal(team.status, 201, JSON.stringify(team.body));
  ids['your-team-flow-id'] = team.body.id;
  const invited = await run(port, examples[23]!, ids);
  t.equal(invited.status, 200, JSON.stringify(invited.body));
  t.same(invited.body.output, ['0: ada@example.com is a member', '1: bo@example.com is a member', '2: cy@example.com is a member']);
  t.equal(invited.body.stepCount, 7);
  t.match(byPath(invited.body).get('each[1].invite'), {
    status: 'completed',
    request: { method: 'POST', headers: { 'idempotency-key': `${invited.body.id}:each[1].invite` }, body: { email: 'bo@example.com' } },
    response: { status: 201 },
  });
  const again = await run(port, examples[23]!, ids);
  t.match(again.body, {
    status: 'failed',
    error: { code: 'step-failed', step: 'each', message: 'Step each failed: step each[0].invite failed: The action answered 409.' },
  });
  t.same([...byPath(again.body).keys()].sort(), ['each', 'each[0].invite', 'each[1].invite'], 'the third item never began');
  t.match(byPath(again.body).get('each[1].invite'), { status: 'failed', response: { status: 409 } });

  // Parallel: the organization read while its members are listed.
  const glance = await run(port, examples[24]!, ids);
  t.equal(glance.status, 201, JSON.stringify(glance.body));
  ids['your-glance-flow-id'] = glance.body.id;
  const both = await run(port, examples[25]!, ids);
  t.equal(both.status, 200, JSON.stringify(both.body));
  t.same(both.body.output, { organization: 'My Organization, run by Tolstoy', members: 5 });
  const [read, list] = [byPath(both.body).get('both.org.read')!, byPath(both.body).get('both.team.list')!];
  t.ok(read.startedAt < list.finishedAt && list.startedAt < read.finishedAt, 'both branches were in flight together');

  // Sleep.
  const nap = await run(port, examples[26]!, ids);
  t.equal(nap.status, 201, JSON.stringify(nap.body));
  ids['your-nap-flow-id'] = nap.body.id;
  const napped = await run(port, examples[27]!, ids);
  t.equal(napped.status, 200, JSON.stringify(napped.body));
  const [slept, after] = [byPath(napped.body).get('nap')!, byPath(napped.body).get('after')!];
  t.match(slept, { kind: 'sleep', status: 'completed', output: null });
  t.ok(Date.parse(after.startedAt) - Date.parse(slept.startedAt) >= 3000, '`after` began three seconds after the sleep did');

  // waitFor: started, seen waiting, signalled, finished.
  const approval = await run(port, examples[28]!, ids);
  t.equal(approval.status, 201, JSON.stringify(approval.body));
  ids['your-approval-flow-id'] = approval.body.id;
  const queued = await run(port, examples[29]!, ids);
  t.equal(queued.status, 202, JSON.stringify(queued.body));
  t.equal(queued.body.status, 'queued');
  ids['your-approval-execution-id'] = queued.body.id;
  const waiting = await waitingStep(app, ids, queued.body.id, 'approval');
  t.ok(waiting, 'the step waits for its signal');
  t.ok(Date.parse(String(waiting?.wakeAt)) > Date.now() + 23 * 3600_000, 'until a day has passed');
  const signal = await run(port, examples[30]!, ids);
  t.equal(signal.status, 202, JSON.stringify(signal.body));
  t.match(signal.body, { executionId: queued.body.id, name: 'approve', payload: { approved: true, by: 'ada@example.com' } });
  const approved = await run(port, examples[31]!, ids);
  t.equal(approved.status, 200);
  t.match(approved.body, { status: 'completed', output: 'A new laptop for Ada: approved by ada@example.com' });
  t.same(byPath(approved.body).get('approval')?.output, { approved: true, by: 'ada@example.com' });

  // A sub-flow, and the parent's children.
  const parent = await run(port, examples[32]!, ids);
  t.equal(parent.status, 201, JSON.stringify(parent.body));
  ids['your-parent-flow-id'] = parent.body.id;
  const greeted = await run(port, examples[33]!, ids);
  t.equal(greeted.status, 200, JSON.stringify(greeted.body));
  t.match(greeted.body, { status: 'completed', output: 'Hello, MY ORGANIZATION, RUN BY TOLSTOY!' });
  const child = byPath(greeted.body).get('describe');
  t.match(child, { kind: 'flow', childExecutionId: String });
  ids['your-parent-execution-id'] = greeted.body.id;
  const children = await run(port, examples[34]!, ids);
  t.equal(children.status, 200, JSON.stringify(children.body));
  t.match(children.body.items, [
    {
      id: child?.childExecutionId,
      flowId: ids['your-describe-flow-id'],
      parent: { executionId: greeted.body.id, step: 'describe' },
      trigger: { type: 'flow' },
    },
  ]);
  t.equal(children.body.items.length, 1);
});

t.test('the subscription examples work as written: events of a run are stored, listed, sent again, and the secret rotated', async (t) => {
  const { port } = await developmentServer(t);
  const first = await firstFlow(t, port);
  const ids: Record<string, string> = { 'your-org-id': first['your-org-id']!, 'your-user-id': first['your-user-id']! };
  const created = await run(port, examples[35]!, ids);
  t.equal(created.status, 201, JSON.stringify(created.body));
  t.match(created.body, { url: 'https://hooks.example.com/tolstoy', events: ['execution.completed', 'execution.failed'], secret: /^whsec_/ });
  ids['your-subscription-id'] = created.body.id;
  // The first flow, run again as "Run it" shows.
  const ran = await run(port, examples[7]!, first);
  t.equal(ran.body.status, 'completed');
  const listed = await run(port, examples[36]!, ids);
  t.equal(listed.status, 200, JSON.stringify(listed.body));
  t.match(listed.body.items, [{ event: 'execution.completed', executionId: ran.body.id, payload: { type: 'execution.completed' } }]);
  ids['your-delivery-id'] = listed.body.items[0].id;
  const again = await run(port, examples[37]!, ids);
  t.equal(again.status, 202, JSON.stringify(again.body));
  t.match(again.body, { id: ids['your-delivery-id'], status: 'pending' });
  const rotated = await run(port, examples[38]!, ids);
  t.equal(rotated.status, 200, JSON.stringify(rotated.body));
  t.match(rotated.body, { secret: /^whsec_/, previousSecretExpiresAt: String });
  t.not(rotated.body.secret, created.body.secret);
});

// The README's curl examples, run as they are written against a freshly started server; only
// the port and the placeholder ids are filled in.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import t from 'tap';
import { freePort } from '../src/db/embedded.ts';
import { ADMIN_TOKEN, buildTestApp, testAuth } from './helper.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const examples = [...readme.matchAll(/```bash\n(curl [^`]+?)```/g)].map((match) => match[1]!.trim());
// The webhook's delivery, signed in the shell before its curl.
const [delivery] = [...readme.matchAll(/```bash\n(body=[^`]+?)```/g)].map((match) => match[1]!.trim());

t.test('the README shows the original three curl examples, the first flow in five steps, then the production way', async (t) => {
  t.equal(examples.length, 16);
  t.match(delivery, /curl -X POST "your-webhook-url"/);
  t.match(examples[0], /POST http:\/\/localhost:3000\/organizations/);
  t.match(examples[1], /POST http:\/\/localhost:3000\/users[\s\S]*X-Org-ID: your-org-id[\s\S]*X-User-ID: your-user-id/);
  t.match(examples[2], /POST http:\/\/localhost:3000\/tools[\s\S]*X-Org-ID: your-org-id/);
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

t.test('they work against a fresh start, in order', async (t) => {
  const { app } = await buildTestApp(t, { worker: true });
  const port = await freePort();
  await app.listen({ port, host: '127.0.0.1' });
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
  const started = await run(port, examples[7]!, { ...withActions, 'your-flow-id': flow.body.id });
  t.equal(started.status, 200, JSON.stringify(started.body));
  t.match(started.body, { status: 'completed', output: { id: ids['your-org-id'], name: 'My Organization, run by Tolstoy' } });
  const read = await run(port, examples[8]!, { ...ids, 'your-execution-id': started.body.id });
  t.equal(read.status, 200);
  t.match(read.body.steps, [
    { key: 'read', status: 'completed', request: { method: 'GET' }, response: { status: 200, body: { name: 'My Organization' } } },
    { key: 'rename', status: 'completed', request: { method: 'PUT', body: { name: 'My Organization, run by Tolstoy' } }, response: { status: 200 } },
  ]);

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

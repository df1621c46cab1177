// The README's curl examples, run as they are written against a freshly started server; only
// the port and the placeholder ids are filled in.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import t from 'tap';
import { freePort } from '../src/db/embedded.ts';
import { buildTestApp } from './helper.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const examples = [...readme.matchAll(/```bash\n(curl [^`]+?)```/g)].map((match) => match[1]!.trim());

t.test('the README shows the original three curl examples, then the first flow in five steps', async (t) => {
  t.equal(examples.length, 9);
  t.match(examples[0], /POST http:\/\/localhost:3000\/organizations/);
  t.match(examples[1], /POST http:\/\/localhost:3000\/users[\s\S]*X-Org-ID: your-org-id[\s\S]*X-User-ID: your-user-id/);
  t.match(examples[2], /POST http:\/\/localhost:3000\/tools[\s\S]*X-Org-ID: your-org-id/);
});

t.test('they work against a fresh start, in order', async (t) => {
  const { app } = await buildTestApp(t, { worker: true });
  const port = await freePort();
  await app.listen({ port, host: '127.0.0.1' });
  const run = async (example: string, ids: Record<string, string>) => {
    let command = example.replaceAll('http://localhost:3000', `http://127.0.0.1:${port}`);
    for (const [placeholder, id] of Object.entries(ids)) command = command.replaceAll(placeholder, id);
    const { stdout } = await promisify(execFile)('sh', ['-c', `${command} -s -w '\\n%{http_code}'`]);
    const [body, status] = [stdout.slice(0, stdout.lastIndexOf('\n')), stdout.slice(stdout.lastIndexOf('\n') + 1)];
    return { status: Number(status), body: JSON.parse(body) };
  };
  const organization = await run(examples[0]!, {});
  t.equal(organization.status, 201, JSON.stringify(organization.body));
  const ids = { 'your-org-id': organization.body.id, 'your-user-id': organization.body.owner.id };
  const user = await run(examples[1]!, ids);
  t.equal(user.status, 201, JSON.stringify(user.body));
  t.equal(user.body.email, 'user@example.com');
  const tool = await run(examples[2]!, ids);
  t.equal(tool.status, 201, JSON.stringify(tool.body));
  t.match(tool.body, { name: 'Slack API', authType: 'bearer', orgId: ids['your-org-id'] });

  // "Run your first flow", step by step.
  const itself = await run(examples[3]!, ids);
  t.equal(itself.status, 201, JSON.stringify(itself.body));
  const withTool = { ...ids, 'your-tool-id': itself.body.id };
  const get = await run(examples[4]!, withTool);
  t.equal(get.status, 201, JSON.stringify(get.body));
  const rename = await run(examples[5]!, withTool);
  t.equal(rename.status, 201, JSON.stringify(rename.body));
  const withActions = { ...withTool, 'your-get-action-id': get.body.id, 'your-rename-action-id': rename.body.id };
  const flow = await run(examples[6]!, withActions);
  t.equal(flow.status, 201, JSON.stringify(flow.body));
  t.match(flow.body.steps, [{ key: 'read' }, { key: 'rename', inputs: { name: '${steps.read.output.name}, run by Tolstoy' } }]);
  const started = await run(examples[7]!, { ...withActions, 'your-flow-id': flow.body.id });
  t.equal(started.status, 200, JSON.stringify(started.body));
  t.match(started.body, { status: 'completed', output: { id: ids['your-org-id'], name: 'My Organization, run by Tolstoy' } });
  const read = await run(examples[8]!, { ...ids, 'your-execution-id': started.body.id });
  t.equal(read.status, 200);
  t.match(read.body.steps, [
    { key: 'read', status: 'completed', request: { method: 'GET' }, response: { status: 200, body: { name: 'My Organization' } } },
    { key: 'rename', status: 'completed', request: { method: 'PUT', body: { name: 'My Organization, run by Tolstoy' } }, response: { status: 200 } },
  ]);
});

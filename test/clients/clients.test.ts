// The generated clients, used for real: a first integration in TypeScript, Python and Go, each
// against the live server (sign up, then with the owner's API key create a tool, an action, a flow and
// an execution log; retry a create with its Idempotency-Key; page through a list; update with
// If-Match, and be refused with a stale tag; delete; meet another tenant's 404 as a typed error).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { generateClients } from '../../scripts/clients.ts';
import { pythonTools } from '../../scripts/python.ts';
import { buildTestApp, testAuth } from '../helper.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const STEPS = [
  'create an organization and its first member',
  'create a tool',
  'a retried create replays the first',
  'create an action',
  'create a flow',
  'create an execution log',
  'list the first page',
  'list the next page',
  'update a flow',
  'a stale If-Match is refused',
  'create another organization',
  'another tenant gets a typed Problem',
  'delete the execution log',
];

await generateClients();
// As in production: API keys, which each client sets once.
const { app } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const base = await app.listen({ port: 0, host: '127.0.0.1' });
const python = join(await pythonTools(), 'python');

const scenarios: Record<string, [string, string[], string]> = {
  'TypeScript (openapi-fetch)': [process.execPath, [join(HERE, 'typescript', 'scenario.ts'), base], HERE],
  'Python (openapi-python-client)': [python, ['scenario.py', base], join(HERE, 'python')],
  'Go (oapi-codegen)': ['go', ['run', '.', base], join(HERE, 'go')],
};

for (const [name, [command, args, cwd]] of Object.entries(scenarios)) {
  t.test(name, async (t) => {
    const result = await promisify(execFile)(command, args, { cwd }).catch((error) => error);
    t.equal(result.code ?? 0, 0, `${result.stderr ?? ''}`);
    const done = String(result.stdout)
      .split('\n')
      .filter((line) => line.startsWith('ok '));
    t.same(
      done.map((line) => line.slice(3).replace(/:.*$/, '')),
      STEPS,
    );
  });
}

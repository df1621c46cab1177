// The spec's code samples (x-codeSamples) do what they say when run as they are written, against a
// live server that requires API keys and runs flows: each curl sample with bash, each TypeScript
// sample with Node and the @tolstoy/client package installed from its tarball (and type-checked
// against it). They are run in the spec's order, which is the first-call path, each language in an
// organization of its own; like Swagger UI, the runner puts the ids and key that earlier samples
// created, and this server's address, where the samples name the examples' ones.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { buildTypescriptClient } from '../../scripts/clients.ts';
import { operations, resolve } from '../contract.ts';
import { buildTestApp, testAuth } from '../helper.ts';

const TSC = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
const TYPES = fileURLToPath(new URL('../../node_modules/@types', import.meta.url));
// What an example names that the server makes up: ids, and API keys.
const MADE_BY_SERVER = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|tsk_[A-Za-z0-9]{59})$/;
const run = promisify(execFile);

interface Sample {
  lang: string;
  label: string;
  source: string;
}

const sampled = operations.filter(({ operation }) => operation['x-codeSamples']);
const { app } = await buildTestApp(t, { worker: true }, undefined, testAuth('keys'));
const base = await app.listen({ port: 0, host: '127.0.0.1' });

// A user's project with the package installed, as its README says.
const project = await mkdtemp(join(tmpdir(), 'tolstoy-samples-'));
const tarball = await buildTypescriptClient(await mkdtemp(join(tmpdir(), 'tolstoy-client-')));
await run('npm', ['init', '--yes'], { cwd: project });
await run('npm', ['pkg', 'set', 'type=module'], { cwd: project });
await run('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: project });
// Every curl of a sample fails on an error status, so that a sample that does not work cannot pass.
const bin = join(project, 'bin');
await run('mkdir', [bin]);
await writeFile(
  join(bin, 'curl'),
  `#!/bin/sh\nexec ${(await run('sh', ['-c', 'command -v curl'])).stdout.trim()} --silent --show-error --fail-with-body "$@"\n`,
);
await chmod(join(bin, 'curl'), 0o755);

/** The answer examples of an operation's successes. */
function successExamples(operation: any): unknown[] {
  return Object.entries<any>(operation.responses)
    .filter(([status]) => status.startsWith('2'))
    .flatMap(([, response]) => Object.values<any>(response.content?.['application/json']?.examples ?? {}))
    .map((example) => resolve(example.$ref).value);
}

/** Each id or key of the example, paired with the real one in the same place of the answer. */
function madeUp(example: unknown, actual: unknown, found: Map<string, string>): void {
  if (typeof example === 'string') {
    if (typeof actual === 'string' && actual !== example && MADE_BY_SERVER.test(example)) found.set(example, actual);
  } else if (example && typeof example === 'object' && actual && typeof actual === 'object') {
    for (const [key, value] of Object.entries(example)) madeUp(value, (actual as Record<string, unknown>)[key], found);
  }
}

const substituted = (source: string, replacements: Map<string, string>) => [...replacements].reduce((text, [from, to]) => text.split(from).join(to), source);

t.test('the main operations have samples in curl and TypeScript', async (t) => {
  t.same(
    sampled.map(({ operationId }) => operationId),
    ['createOrganization', 'createTool', 'createAction', 'createFlow', 'updateFlow', 'startExecution', 'listExecutions', 'getExecution'],
  );
  for (const { operationId, operation } of sampled) {
    t.same(
      operation['x-codeSamples'].map((sample: Sample) => sample.label),
      ['curl', 'TypeScript (@tolstoy/client)'],
      operationId,
    );
  }
});

t.test('the TypeScript samples type-check against the package', async (t) => {
  const files = [];
  for (const { operationId, operation } of sampled) {
    const file = `check-${operationId}.ts`;
    await writeFile(join(project, file), operation['x-codeSamples'][1].source);
    files.push(file);
  }
  const checked = await run(
    process.execPath,
    [TSC, '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'nodenext', '--types', 'node', '--typeRoots', TYPES, ...files],
    { cwd: project },
  ).catch((error) => error);
  t.equal(checked.code ?? 0, 0, checked.code ? `tsc: ${checked.stdout}` : 'no type errors');
});

for (const [index, label] of ['curl', 'TypeScript (@tolstoy/client)'].entries()) {
  t.test(`the ${label} samples, run in order, work as written`, async (t) => {
    const replacements = new Map([['http://localhost:3000', base]]);
    for (const { operationId, operation } of sampled) {
      const sample: Sample = operation['x-codeSamples'][index];
      const source = substituted(sample.source, replacements);
      const result =
        sample.lang === 'Shell'
          ? await run('bash', ['-euo', 'pipefail', '-c', source], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }).catch((error) => error)
          : await writeFile(join(project, `${operationId}.ts`), source).then(() =>
              run(process.execPath, [`${operationId}.ts`], { cwd: project }).catch((error) => error),
            );
      t.equal(result.code ?? 0, 0, result.code ? `${operationId}: ${result.stderr}${result.stdout}` : operationId);
      const answer = JSON.parse(result.stdout);
      for (const example of successExamples(operation)) madeUp(example, answer, replacements);
      if (operationId === 'startExecution') t.match(answer, { status: 'completed', output: { greeting: 'Hello, My Organization!' } }, 'the run finished');
      if (operationId === 'updateFlow') t.equal(answer.version, 2, 'the update applied to the version read');
      if (operationId === 'listExecutions') t.equal(answer.items.length, 1, 'the run just made');
    }
    t.ok(replacements.size >= 6, 'the address, the key, and the ids of the organization, tool, action and flow');
  });
}

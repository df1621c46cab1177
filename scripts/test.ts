// `npm test`: every test of the project against a real PostgreSQL. Starts one throwaway
// embedded PostgreSQL for the run (unless TEST_DATABASE_URL names another server), prepares the
// migrated template database that each test file clones, runs tap, and stops what it started.
// Extra arguments go to tap (`npm test -- test/tenancy.test.ts`).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { prepareTemplate } from '../test/helper.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const embedded = process.env.TEST_DATABASE_URL ? undefined : await startEmbeddedPostgres({ dataDir: join(tmpdir(), `tolstoy-test-${randomUUID()}`), ephemeral: true });
const serverUrl = process.env.TEST_DATABASE_URL ?? embedded!.url;
let exitCode = 1;
try {
  await prepareTemplate(serverUrl);
  exitCode = await run(join(ROOT, 'node_modules', '.bin', 'tap'), process.argv.slice(2), { ...process.env, TEST_DATABASE_URL: serverUrl });
} finally {
  await embedded?.stop();
}
process.exit(exitCode);

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: 'inherit' });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

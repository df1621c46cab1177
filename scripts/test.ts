// `npm test`: every test of the project against a real PostgreSQL. Starts one throwaway
// embedded PostgreSQL for the run (unless TEST_DATABASE_URL names another server), prepares the
// migrated template database that each test file clones, runs tap, then the contract fuzzing
// (scripts/contract.ts), and stops what it started. Extra arguments go to tap and run only those
// files (`npm test -- test/tenancy.test.ts`).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { cloneTemplate, prepareTemplate } from '../test/helper.ts';
import { contractModes, runContract } from './contract.ts';
import { debianTools } from './debian.ts';
import { pythonTools } from './python.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const embedded = process.env.TEST_DATABASE_URL
  ? undefined
  : await startEmbeddedPostgres({ dataDir: join(tmpdir(), `tolstoy-test-${randomUUID()}`), ephemeral: true });
const serverUrl = process.env.TEST_DATABASE_URL ?? embedded!.url;
const tapArgs = process.argv.slice(2);
// What some tests need from outside npm is installed once, before tests run in parallel.
await pythonTools();
await debianTools();
const results: Result[] = [];
try {
  await prepareTemplate(serverUrl);
  results.push(await tap(tapArgs, { ...process.env, TEST_DATABASE_URL: serverUrl }));
  // The whole suite also fuzzes the contract, in both ways of authenticating; a run of chosen test files does not.
  if (tapArgs.length === 0) {
    for (const mode of contractModes()) results.push(await runContract([], await cloneTemplate(serverUrl, `contract_${mode}`), mode));
  }
} finally {
  await embedded?.stop();
}
const result = results.reduce((sum, r) => ({ code: Math.max(sum.code, r.code), passed: sum.passed + r.passed, failed: sum.failed + r.failed }));
// The summary line CI reads.
console.log(`${result.passed} passed, ${result.failed} failed`);
process.exit(result.code);

interface Result {
  code: number;
  passed: number;
  failed: number;
}

// Runs tap, passing its output through and reading its closing `# { total: …, pass: …, fail: … }`.
function tap(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'tap'), args, { cwd: ROOT, env, stdio: ['inherit', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4096);
    });
    child.on('close', (code) => {
      const summary = tail.match(/# \{ total: (\d+)[^}]*\}/)?.[0] ?? '';
      const count = (name: string) => Number(summary.match(new RegExp(`${name}: (\\d+)`))?.[1] ?? 0);
      const failed = count('fail') + (code !== 0 && count('fail') === 0 ? 1 : 0);
      resolve({ code: code ?? 1, passed: count('pass'), failed });
    });
  });
}

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
    for (const mode of contractModes()) {
      const run = await runContract([], await cloneTemplate(serverUrl, `contract_${mode}`), mode);
      results.push({ ...run, failures: run.code === 0 ? [] : [`contract fuzzing (${mode}): see schemathesis's report above`] });
    }
  }
} finally {
  await embedded?.stop();
}
const result = results.reduce((sum, r) => ({
  code: Math.max(sum.code, r.code),
  passed: sum.passed + r.passed,
  failed: sum.failed + r.failed,
  failures: [...sum.failures, ...r.failures],
}));
// CI shows only the end of the output, so the failures are repeated there, then the summary line CI reads.
if (result.failures.length > 0) console.log(`Failures:\n${result.failures.join('\n')}`);
console.log(`${result.passed} passed, ${result.failed} failed`);
process.exit(result.code);

interface Result {
  code: number;
  passed: number;
  failed: number;
  failures: string[];
}

// Runs tap, passing its output through and reading its closing `# { total: …, pass: …, fail: … }`.
function tap(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'tap'), args, { cwd: ROOT, env, stdio: ['inherit', 'pipe', 'inherit'] });
    let tail = '';
    let pending = '';
    const lines = failureLines();
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4096);
      const parts = (pending + chunk.toString()).split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) lines.read(line);
    });
    child.on('close', (code) => {
      const summary = tail.match(/# \{ total: (\d+)[^}]*\}/)?.[0] ?? '';
      const count = (name: string) => Number(summary.match(new RegExp(`${name}: (\\d+)`))?.[1] ?? 0);
      const failed = count('fail') + (code !== 0 && count('fail') === 0 ? 1 : 0);
      resolve({ code: code ?? 1, passed: count('pass'), failed, failures: lines.found });
    });
  });
}

// Picks out of tap's output each failed assertion with its diagnostics (the YAML block that follows
// it, up to 30 lines), and the test file it belongs to. A function, hoisted: the run above uses it.
function failureLines() {
  const found: string[] = [];
  let file = '';
  let block = 0;
  const read = (line: string) => {
    const start = line.match(/^# Subtest: (test\/\S+)/);
    if (start?.[1]) file = start[1];
    if (block > 0) {
      found.push(line);
      block = /^\s*\.\.\.$/.test(line) ? 0 : block - 1;
    } else if (/^\s+not ok /.test(line)) {
      found.push(`${file}: ${line.trim()}`);
      block = 30;
    }
  };
  return { found, read };
}

// `npm test`: every test of the project against a real PostgreSQL. Starts one throwaway
// embedded PostgreSQL for the run (unless TEST_DATABASE_URL names another server), prepares the
// migrated template database that each test file clones, then runs tap, several files at once
// (package.json's "tap" block says how many), with the contract fuzzing (scripts/contract.ts)
// beside it; the fuzzing's output is shown once tap is done. Arguments go to tap and run only
// those files, without the fuzzing: `npm test -- test/http/tenancy.test.ts`. Nothing is installed
// up front: the tests that need Chromium, PgBouncer or the Python tools install them on first use.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TapConfig } from '@tapjs/config';
import { signature } from '@tapjs/test';
import type { AuthMode } from '../src/config/settings.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { prepareTemplate } from '../test/helper.ts';
import { CONTRACT_REPORT_DIR, contractCounts, contractModes } from './contract.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);
// About 7 minutes each on a quiet 2-core machine; a fuzzer that hangs must not hold CI until its limit.
const CONTRACT_TIMEOUT_MS = 40 * 60_000;
// The fuzzers' process groups: interrupted, the run stops them too, as the terminal stops tap.
const fuzzers = new Set<number>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const pid of fuzzers) process.kill(-pid, 'SIGKILL');
    process.exit(1);
  });
}

const tapArgs = process.argv.slice(2);
const wholeSuite = tapArgs.length === 0;
// One chosen test file starts a PostgreSQL of its own only if it needs one (test/helper.ts); more share the run's.
const oneFile = tapArgs.filter((arg) => !arg.startsWith('-')).length === 1 && tapArgs.some((arg) => arg.endsWith('.test.ts'));
await tapBuilt();
// The fuzzing starts first, beside tap: it is the longest part, and it has a PostgreSQL of its own.
const fuzzing = wholeSuite ? fuzzEveryMode() : Promise.resolve([]);
const embedded =
  process.env.TEST_DATABASE_URL || oneFile
    ? undefined
    : await startEmbeddedPostgres({ dataDir: join(tmpdir(), `tolstoy-test-${randomUUID()}`), ephemeral: true });
const serverUrl = process.env.TEST_DATABASE_URL ?? embedded?.url;
const results: Result[] = [];
try {
  if (serverUrl) await prepareTemplate(serverUrl);
  if (!oneFile) await builtOnce();
  results.push(await tap(tapArgs, serverUrl ? { ...process.env, TEST_DATABASE_URL: serverUrl } : process.env));
  for (const { output, ...result } of await fuzzing) {
    process.stdout.write(output);
    results.push(result);
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

/**
 * tap builds its test class with the plugins package.json names when they differ from what it
 * was built with (after `npm ci`, say), but its runner has loaded the old class by then, and
 * starts every file of that run with the old plugins' loaders (TypeScript's: seconds per file).
 * So the build is done here, before tap starts.
 */
async function tapBuilt(): Promise<void> {
  if ((await TapConfig.load()).pluginSignature === signature) return;
  await run(join(ROOT, 'node_modules', '.bin', 'tap'), ['build'], { cwd: ROOT });
}

/**
 * Builds dist/ before test files run at once: the build is incremental (tsconfig.build.json), so
 * the `npm run build` of each test that runs the built server (benchmarks, `npm start`) then
 * writes nothing, and none reads a file that another is rewriting.
 */
async function builtOnce(): Promise<void> {
  await run('npm', ['run', '--silent', 'build'], { cwd: ROOT });
}

/** The contract fuzzing in each way of authenticating, one after the other: each keeps a core busy. */
async function fuzzEveryMode(): Promise<(Result & { output: string })[]> {
  const runs = [];
  for (const mode of contractModes()) runs.push(await contract(mode));
  return runs;
}

/** The contract fuzzing in one way of authenticating, as `npm run test:contract` runs it; its output kept for later. */
async function contract(mode: AuthMode): Promise<Result & { output: string }> {
  // No report of an earlier run may stand for this one.
  await rm(join(CONTRACT_REPORT_DIR, mode), { recursive: true, force: true });
  return new Promise((resolve) => {
    // In a process group of its own, so that a timeout stops schemathesis and PostgreSQL with it.
    const child = spawn(process.execPath, ['scripts/contract.ts'], {
      cwd: ROOT,
      env: { ...process.env, TOLSTOY_AUTH: mode },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    fuzzers.add(child.pid!);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, CONTRACT_TIMEOUT_MS);
    child.on('close', async (code) => {
      clearTimeout(timer);
      fuzzers.delete(child.pid!);
      if (timedOut) output += `\nThe contract fuzzing (${mode}) was stopped after ${CONTRACT_TIMEOUT_MS / 60_000} minutes.\n`;
      const counts = await contractCounts(mode);
      const failed = counts.failed + (code !== 0 && counts.failed === 0 ? 1 : 0);
      const unchained = output.match(/Never chained through links: .*/)?.[0];
      const why = timedOut ? 'stopped after its time limit' : (unchained ?? "see schemathesis's report above");
      const failures = code === 0 ? [] : [`contract fuzzing (${mode}): ${why}`];
      resolve({ code: code ?? 1, passed: counts.passed, failed, failures, output });
    });
  });
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

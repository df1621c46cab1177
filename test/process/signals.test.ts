// `npm start` and `npm run worker` under a process manager: containers, systemd units and CI
// scripts signal the PID they started, which is npm's. SIGTERM or SIGINT sent to npm must drain
// and stop the server (or worker) and its embedded PostgreSQL within the documented bound
// (SHUTDOWN_TIMEOUT_MS, then 5 s for the pool and the database), leaving no orphan behind.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { clusterDir, freePort } from '../../src/db/embedded.ts';

const SHUTDOWN_TIMEOUT_MS = 2000;
const BOUND_MS = SHUTDOWN_TIMEOUT_MS + 5000;

interface Started {
  npm: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

// As a process manager does: npm in a session of its own (setsid), so that nothing but the
// signal sent to npm's own PID can reach the processes below it.
function npm(args: string[], env: Record<string, string>): Started {
  const child = spawn('npm', args, {
    detached: true,
    env: { ...process.env, LOG_LEVEL: 'info', TOLSTOY_METRICS_PORT: '0', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { npm: child, output: () => output, exited };
}

async function until(ready: () => Promise<boolean> | boolean, what: () => string, ms = 120_000): Promise<void> {
  for (const since = Date.now(); Date.now() - since < ms; ) {
    if (await ready()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what()}`);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

// The pids of the processes the test must see end: node, from its log lines, and the embedded PostgreSQL's postmaster.
async function processesOf(started: Started, dataDir: string): Promise<{ node: number; postgres: number }> {
  const line = started
    .output()
    .split('\n')
    .find((text) => text.startsWith('{"level"'));
  const node = Number(JSON.parse(line!).pid);
  const postgres = Number((await readFile(join(await clusterDir(dataDir), 'postmaster.pid'), 'utf8')).split('\n')[0]);
  return { node, postgres };
}

async function stopsWithin(t: Test, started: Started, dataDir: string, signal: NodeJS.Signals): Promise<void> {
  const { node, postgres } = await processesOf(started, dataDir);
  t.not(node, started.npm.pid, 'the service runs in a process of its own, below npm');
  // Should it outlive npm, it must not outlive the test.
  t.teardown(() => {
    if (alive(node)) process.kill(node, 'SIGKILL');
    if (alive(postgres)) process.kill(postgres, 'SIGINT');
  });
  const since = Date.now();
  process.kill(started.npm.pid!, signal);
  const code = await started.exited;
  await until(
    () => !alive(node) && !alive(postgres),
    () => `still running after npm exited: ${alive(node) ? `node ${node}` : ''} ${alive(postgres) ? `PostgreSQL ${postgres}` : ''}`,
    BOUND_MS,
  );
  const ms = Date.now() - since;
  t.equal(code, 0, `npm exits cleanly on ${signal}`);
  t.ok(ms < BOUND_MS, `node and the embedded PostgreSQL stopped within the bound (${ms} ms < ${BOUND_MS} ms)`);
  t.match(started.output(), /"msg":"Tolstoy stopped/, 'the last word is that it stopped');
}

t.before(async () => {
  // Every test runs what `npm start` builds; build it once, then skip the prestart builds.
  await promisify(execFile)('npm', ['run', '--silent', 'build']);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} sent to npm start's own PID stops the server and its embedded PostgreSQL`, async (t) => {
    const dataDir = join(tmpdir(), `tolstoy-signals-${randomUUID()}`);
    t.teardown(async () => rm(await clusterDir(dataDir), { recursive: true, force: true }));
    const port = await freePort();
    const started = npm(['start', '--ignore-scripts'], { PORT: String(port), TOLSTOY_DATA_DIR: dataDir, DATABASE_URL: '', DIRECT_URL: '' });
    t.teardown(() => started.npm.kill('SIGKILL'));
    await until(
      () =>
        fetch(`http://127.0.0.1:${port}/health`)
          .then((r) => r.ok)
          .catch(() => false),
      () => `npm start did not answer: ${started.output()}`,
    );
    await stopsWithin(t, started, dataDir, signal);
  });

  t.test(`${signal} sent to npm run worker's own PID stops the worker and its embedded PostgreSQL`, async (t) => {
    const dataDir = join(tmpdir(), `tolstoy-signals-${randomUUID()}`);
    t.teardown(async () => rm(await clusterDir(dataDir), { recursive: true, force: true }));
    const started = npm(['run', 'worker', '--ignore-scripts'], { TOLSTOY_DATA_DIR: dataDir, DATABASE_URL: '', DIRECT_URL: '' });
    t.teardown(() => started.npm.kill('SIGKILL'));
    await until(
      () => started.output().includes('Worker running'),
      () => `npm run worker did not start: ${started.output()}`,
    );
    t.ok(existsSync(join(await clusterDir(dataDir), 'postmaster.pid')), 'its embedded PostgreSQL runs');
    await stopsWithin(t, started, dataDir, signal);
  });
}

// Tolstoy in the engine benchmark, as its production build runs: `npm start` (the API and a
// worker in one process) or an API-only node beside `npm run worker` processes; API keys,
// production settings, the tenants' flows calling the echo server.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';
import type { Target } from './load.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Node's flags exactly as `npm start` and `npm run worker` give them.
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
// The scripts are `exec node <flags> <file>`: exec, so that npm's signals reach node.
const flagsOf = (script: string) =>
  scripts[script]!.replace(/^exec /, '')
    .split(' ')
    .slice(1, -1);

const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const ENCRYPTION_KEY = randomBytes(32).toString('base64');

/** A worker's `concurrency` (TOLSTOY_WORKER_CONCURRENCY) is its slots, the default's when omitted. */
export type Layout = { name: 'one process'; workers: 0 } | { name: string; workers: 1 | 2; concurrency?: number };

/** `npm start` alone, or an API-only node and one or two worker processes. */
export const SINGLE: Layout = { name: 'one process', workers: 0 };
export const ONE_WORKER: Layout = { name: 'API + 1 worker', workers: 1 };
export const TWO_WORKERS: Layout = { name: 'API + 2 workers', workers: 2 };

/** The sizes of the control-flow scenarios' flows. */
export interface ControlFlowSizes {
  /** Items of the loop flow's forEach, and how many it runs at once. */
  loopItems: number;
  loopConcurrency: number;
  /** The nap flow's sleep. */
  napMs: number;
}

export interface Tenant {
  key: string;
  /** One step: echo the run's input. */
  syncFlowId: string;
  /** Three steps, each templating what the one before received. */
  chainFlowId: string;
  /** One forEach step over `range(0, loopItems)`, each item one echo of it. */
  loopFlowId: string;
  /** A sleep, then a transform. */
  napFlowId: string;
}

export interface RunningTolstoy {
  base: string;
  api: ChildProcess;
  workers: ChildProcess[];
  /** Kills worker `index` with SIGKILL and starts another in its place. */
  replaceWorker(index: number): Promise<ChildProcess>;
  stop(): Promise<void>;
}

function environment(databaseUrl: string, port: number, worker: boolean, concurrency?: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    DIRECT_URL: '',
    PORT: String(port),
    HOST: '127.0.0.1',
    USE_AWS_SECRETS: 'false',
    TOLSTOY_ENCRYPTION_KEY: ENCRYPTION_KEY,
    TOLSTOY_ADMIN_TOKEN: ADMIN_TOKEN,
    TOLSTOY_WORKER: String(worker),
    // The echo server is on this machine; production refuses private targets unless told.
    TOLSTOY_ALLOW_PRIVATE_TARGETS: 'true',
    // A benchmark's few tenants would meet the default rate limits at once; n8n has none.
    TOLSTOY_RATE_LIMIT_PER_KEY: '0',
    TOLSTOY_RATE_LIMIT_PER_ORG: '0',
    // One address sends every organization's key (20 in bench:growth), each looked up again as the
    // 5 s cache lapses, several at once when the database is slow: past the 300 lookups a minute
    // that guard against guessing keys (bench/GROWTH.md's notes).
    TOLSTOY_RATE_LIMIT_KEY_LOOKUPS_PER_ADDRESS: '0',
    TOLSTOY_METRICS_PORT: 'off',
    ...(concurrency === undefined ? {} : { TOLSTOY_WORKER_CONCURRENCY: String(concurrency) }),
  };
}

/** Starts a process and waits for the line that says it is ready. */
function launch(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => fail(new Error(`${args.join(' ')} did not start within 60 s:\n${output}`)), 60_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const listen = (chunk: Buffer) => {
      output = (output + chunk).slice(-20_000);
      if (ready.test(output)) {
        clearTimeout(timer);
        child.stdout!.off('data', listen);
        child.stdout!.resume();
        child.stderr!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', listen);
    child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk).slice(-20_000)));
    child.once('exit', (code) => fail(new Error(`${args.join(' ')} exited (${code}) before it was ready:\n${output}`)));
  });
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function startTolstoy(databaseUrl: string, layout: Layout): Promise<RunningTolstoy> {
  const port = await freePort();
  const api = await launch([...flagsOf('start'), 'dist/server.js'], environment(databaseUrl, port, layout.workers === 0), /Server listening/);
  const concurrency = layout.workers === 0 ? undefined : layout.concurrency;
  const startWorker = () => launch([...flagsOf('worker'), 'dist/worker.js'], environment(databaseUrl, port, true, concurrency), /Worker running/);
  const workers = await Promise.all(Array.from({ length: layout.workers }, startWorker));
  return {
    base: `http://127.0.0.1:${port}`,
    api,
    workers,
    async replaceWorker(index) {
      workers[index]!.kill('SIGKILL');
      workers[index] = await startWorker();
      return workers[index]!;
    },
    async stop() {
      await Promise.all([...workers, api].map(stopped));
    },
  };
}

async function post(base: string, path: string, headers: Record<string, string>, body: unknown): Promise<any> {
  const response = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  if (response.status !== 201) throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Organizations, each with the echo server as a tool, its action, and the four flows. */
export async function setUpTenants(base: string, echoUrl: string, count: number, sizes: ControlFlowSizes): Promise<Tenant[]> {
  const tenants: Tenant[] = [];
  for (let i = 0; i < count; i++) {
    const organization = await post(
      base,
      '/organizations',
      { authorization: `Bearer ${ADMIN_TOKEN}` },
      {
        name: `Engine bench ${i + 1}`,
        owner: { email: `owner-${i + 1}@bench.example` },
      },
    );
    const auth = { authorization: `Bearer ${organization.apiKey.key}` };
    const tool = await post(base, '/tools', auth, { name: 'Echo', baseUrl: echoUrl });
    const action = await post(base, '/actions', auth, { toolId: tool.id, name: 'Echo', key: 'echo', method: 'POST', endpoint: '/echo' });
    const sync = await post(base, '/flows', auth, {
      name: 'Echo the input',
      steps: [{ key: 'echo', actionId: action.id, inputs: { text: { $eval: 'input.text' } } }],
    });
    const chain = await post(base, '/flows', auth, {
      name: 'Three steps, each from the one before',
      steps: [
        { key: 'one', actionId: action.id, inputs: { text: { $eval: 'input.text' } } },
        { key: 'two', actionId: action.id, inputs: { text: '${steps.one.output.text}, twice' } },
        { key: 'three', actionId: action.id, inputs: { text: '${steps.two.output.text}, thrice' } },
      ],
    });
    const loop = await post(base, '/flows', auth, {
      name: `A loop of ${sizes.loopItems} echoes`,
      steps: [
        {
          key: 'each',
          forEach: {
            items: `range(0, ${sizes.loopItems})`,
            concurrency: sizes.loopConcurrency,
            steps: [{ key: 'call', actionId: action.id, inputs: { item: { $eval: 'item' } } }],
          },
        },
      ],
    });
    const nap = await post(base, '/flows', auth, {
      name: 'A nap, then a transform',
      steps: [
        { key: 'nap', sleep: { ms: sizes.napMs } },
        { key: 'after', transform: 1 },
      ],
    });
    tenants.push({ key: organization.apiKey.key, syncFlowId: sync.id, chainFlowId: chain.id, loopFlowId: loop.id, napFlowId: nap.id });
  }
  return tenants;
}

/** Requests that run the one-step flow and wait for it (`Prefer: wait`), spread over the tenants. */
export function syncTargets(tenants: Tenant[]): Target[] {
  return tenants.map((tenant) => ({
    path: `/flows/${tenant.syncFlowId}/executions`,
    headers: { authorization: `Bearer ${tenant.key}`, prefer: 'wait=30' },
    body: '{"input":{"text":"{text}"}}',
  }));
}

/** Requests that start the three-step flow, answered as soon as the run is stored. */
export function chainTargets(tenants: Tenant[]): Target[] {
  return tenants.map((tenant) => ({
    path: `/flows/${tenant.chainFlowId}/executions`,
    headers: { authorization: `Bearer ${tenant.key}` },
    body: '{"input":{"text":"{text}"}}',
  }));
}

export interface Completion {
  /** Executions of the window that completed (or failed, or are still unfinished). */
  completed: number;
  failed: number;
  unfinished: number;
  /** From the start's acceptance to the run's end, of those that completed. */
  p50Ms: number;
  p99Ms: number;
  /** Completions per second, and seconds, from the first start to the last completion. */
  perSecond: number;
  seconds: number;
}

/** One execution of a window, as a system recorded it. */
export interface Outcome {
  outcome: 'completed' | 'failed' | 'unfinished';
  started: Date;
  finished: Date | null;
}

/**
 * The least UUIDv7 of `since`'s millisecond. Tolstoy's ids are UUIDv7 made when a run is started,
 * so the runs started since then are an index range of the primary key: on a database holding a
 * long history (bench:growth), a condition on `created_at` alone would read the whole table.
 */
export function firstIdOf(since: Date): string {
  const ms = since.getTime().toString(16).padStart(12, '0');
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7000-8000-000000000000`;
}

/** What became of the executions started since `since`. */
export async function completions(databaseUrl: string, since: Date): Promise<Completion> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<Outcome>(
      `SELECT CASE WHEN status = 'completed' THEN 'completed' WHEN status IN ('failed', 'cancelled') THEN 'failed' ELSE 'unfinished' END AS outcome,
         created_at AS started, finished_at AS finished
       FROM executions WHERE id >= $2::uuid AND created_at >= $1`,
      [since, firstIdOf(since)],
    );
    return completionOf(rows);
  } finally {
    await client.end();
  }
}

/** The figures of a window's executions, whichever system ran them. */
export function completionOf(rows: Outcome[]): Completion {
  const done = rows.filter((row) => row.outcome === 'completed');
  const durations = done.map((row) => row.finished!.getTime() - row.started.getTime()).sort((a, b) => a - b);
  const first = Math.min(...rows.map((row) => row.started.getTime()));
  const last = Math.max(...done.map((row) => row.finished!.getTime()));
  const at = (p: number) => durations[Math.min(durations.length - 1, Math.floor((p / 100) * durations.length))] ?? 0;
  return {
    completed: done.length,
    failed: rows.filter((row) => row.outcome === 'failed').length,
    unfinished: rows.filter((row) => row.outcome === 'unfinished').length,
    p50Ms: at(50),
    p99Ms: at(99),
    perSecond: done.length > 0 ? done.length / ((last - first) / 1000) : 0,
    seconds: done.length > 0 ? (last - first) / 1000 : 0,
  };
}

/** Executions started since `since` that are not finished yet. */
export async function unfinished(databaseUrl: string, since: Date): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM executions WHERE id >= $2::uuid AND created_at >= $1 AND status IN ('queued', 'running')",
      [since, firstIdOf(since)],
    );
    return rows[0]!.count;
  } finally {
    await client.end();
  }
}

export interface Durability {
  /** Started (the start answered 202) but not completed in the end. */
  lost: number;
  /** Steps recorded as completed more than once. */
  completedStepsRepeated: number;
}

/** Of the executions whose starts were accepted: how many did not complete, and how many steps completed twice. */
export async function durability(databaseUrl: string, ids: string[]): Promise<Durability> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const completed = await client.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM executions WHERE id = ANY($1::uuid[]) AND status = 'completed'",
      [ids],
    );
    const repeated = await client.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM (
         SELECT execution_id, step_key FROM execution_logs
         WHERE execution_id = ANY($1::text[]) AND status = 'completed' GROUP BY execution_id, step_key HAVING count(*) > 1) twice`,
      [ids],
    );
    return { lost: ids.length - completed.rows[0]!.count, completedStepsRepeated: repeated.rows[0]!.count };
  } finally {
    await client.end();
  }
}

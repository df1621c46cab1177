// DBOS Transact as the engine benchmark's peer: the app of bench/engine/dbosApp.ts run with plain
// `node` as a process of its own, its system database beside Tolstoy's on the same embedded
// PostgreSQL, and what became of its runs read from DBOS's own table (dbos.workflow_status).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';
import type { Target } from './load.ts';
import { type Completion, completionOf, type Outcome } from './tolstoy.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The version npm ci installed (pinned in package.json's devDependencies). */
export const DBOS_VERSION: string = JSON.parse(readFileSync(join(ROOT, 'node_modules', '@dbos-inc', 'dbos-sdk', 'package.json'), 'utf8')).version;
const DATABASE = 'dbos_bench';

export interface DbosSetup {
  /** DBOS's system database, which DBOS.launch creates and migrates. */
  databaseUrl: string;
  echoUrl: string;
}

export interface RunningDbos {
  base: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A fresh database name for DBOS's system tables on the benchmark's PostgreSQL. */
export async function setUpDbos(serverUrl: string, echoUrl: string): Promise<DbosSetup> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`).finally(() => admin.end());
  const databaseUrl = new URL(serverUrl);
  databaseUrl.pathname = `/${DATABASE}`;
  return { databaseUrl: databaseUrl.toString(), echoUrl };
}

export async function startDbos(setup: DbosSetup): Promise<RunningDbos> {
  const port = await freePort();
  const child = spawn(process.execPath, ['bench/engine/dbosApp.ts', String(port), setup.databaseUrl, setup.echoUrl], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk).slice(-20_000));
  child.stderr!.on('data', keep);
  child.stdout!.on('data', keep);
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the DBOS app did not start within 60 s:\n${output}`));
    }, 60_000);
    // DBOS logs its launch on stdout too; the app prints `ready` once it listens.
    const listen = () => {
      if (!/^ready$/m.test(output)) return;
      clearTimeout(timer);
      child.stdout!.off('data', listen);
      resolve();
    };
    child.stdout!.on('data', listen);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the DBOS app exited (${code}) before it was ready:\n${output}`));
    });
  });
  return { base: `http://127.0.0.1:${port}`, process: child, stop };
}

export const dbosSyncTargets = (): Target[] => [{ path: '/sync', headers: {}, body: '{"text":"{text}"}' }];
export const dbosChainTargets = (): Target[] => [{ path: '/chain', headers: {}, body: '{"text":"{text}"}' }];

/** What became of the three-step workflows started since `since`, from DBOS's own records. */
export async function dbosCompletions(databaseUrl: string, since: Date): Promise<Completion> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // created_at is written when the start is recorded, completed_at when the workflow ends (ms since the epoch).
    const { rows } = await client.query<Outcome>(
      `SELECT CASE WHEN status = 'SUCCESS' THEN 'completed' WHEN status IN ('PENDING', 'ENQUEUED') THEN 'unfinished' ELSE 'failed' END AS outcome,
         to_timestamp(created_at / 1000.0) AS started, to_timestamp(coalesce(completed_at, updated_at) / 1000.0) AS finished
       FROM dbos.workflow_status WHERE name = 'threeSteps' AND created_at >= $1`,
      [since.getTime()],
    );
    return completionOf(rows);
  } finally {
    await client.end();
  }
}

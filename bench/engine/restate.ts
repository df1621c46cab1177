// Restate as a peer of the engine benchmark (bench/engine/notes.md): restate-server and the
// TypeScript SDK installed on demand into bench/engine/.restate (never a dependency of Tolstoy,
// never in git); the server run as its own process on its own storage (Restate does not store on
// PostgreSQL), beside a service endpoint process (bench/engine/restateService.ts) registered with
// its admin API. A is an ingress call answered when the handler finished; B an ingress `/send`,
// answered once the invocation is durably accepted; B's completions come from Restate's own
// records (its SQL introspection API, table sys_invocation).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../../src/db/embedded.ts';
import type { Target } from './load.ts';
import { type Completion, completionOf, type Outcome } from './tolstoy.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// The newest server on the registry here, and the newest SDK its README lists as compatible with it.
export const RESTATE_SERVER_VERSION = '1.7.12';
export const RESTATE_SDK_VERSION = '1.16.9';
const HOME = join(ROOT, 'bench', 'engine', '.restate');
// The binary itself, not the package's Node wrapper, so that no extra process sits between.
const SERVER = join(HOME, 'node_modules', '@restatedev', `restate-server-${process.platform}-${process.arch}`, 'bin', 'restate-server');
const SDK = join(HOME, 'node_modules', '@restatedev', 'restate-sdk', 'package.json');
const run = promisify(execFile);
const START_MS = 60_000;

export function restateInstalled(): boolean {
  return existsSync(SERVER) && existsSync(SDK);
}

/** Installs restate-server and the SDK when missing (216 MB); the reason it could not, or undefined. */
export async function installRestate(): Promise<string | undefined> {
  if (!restateInstalled()) {
    await mkdir(HOME, { recursive: true });
    await writeFile(join(HOME, 'package.json'), '{ "private": true }\n');
    const packages = [`@restatedev/restate-server@${RESTATE_SERVER_VERSION}`, `@restatedev/restate-sdk@${RESTATE_SDK_VERSION}`];
    console.log(`Installing ${packages.join(' and ')} into bench/engine/.restate (once) …`);
    // The server package's only install script is a download counter (@scarf/scarf).
    const installed = await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--save-exact', ...packages], {
      cwd: HOME,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: Error & { stderr?: string }) => error);
    if (installed instanceof Error)
      return `npm install ${packages.join(' ')} failed: ${(installed.stderr ?? installed.message).trim().split('\n').slice(-3).join(' ')}`;
    if (!restateInstalled()) return `npm install left no restate-server binary for ${process.platform}-${process.arch}`;
  }
  const version = await run(SERVER, ['--version']).catch((error: Error) => error);
  if (version instanceof Error) return `restate-server --version failed: ${version.message.trim().split('\n').slice(-2).join(' ')}`;
  return undefined;
}

export interface RestateSetup {
  baseDir: string;
  echoUrl: string;
  ports: { ingress: number; admin: number; node: number; endpoint: number };
}

/** Ports chosen once, since the node's address is kept in its own metadata across restarts. */
export async function setUpRestate(baseDir: string, echoUrl: string): Promise<RestateSetup> {
  await mkdir(baseDir, { recursive: true });
  return { baseDir, echoUrl, ports: { ingress: await freePort(), admin: await freePort(), node: await freePort(), endpoint: await freePort() } };
}

export interface RunningRestate {
  /** The ingress. */
  base: string;
  admin: string;
  server: ChildProcess;
  endpoint: ChildProcess;
  stop(): Promise<void>;
}

function serverEnvironment(setup: RestateSetup): NodeJS.ProcessEnv {
  return {
    ...process.env,
    // Durable as shipped: every batch of the log is fsynced (log-server and local loglet
    // `rocksdb-disable-wal-fsync = false`, the defaults); nothing here changes that.
    RESTATE_NODE_NAME: 'bench',
    RESTATE_BIND_ADDRESS: `127.0.0.1:${setup.ports.node}`,
    RESTATE_ADVERTISED_ADDRESS: `http://127.0.0.1:${setup.ports.node}/`,
    RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${setup.ports.ingress}`,
    RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${setup.ports.admin}`,
    // The machines reach no host but the registries.
    RESTATE_DISABLE_TELEMETRY: 'true',
    RESTATE_LOG_FILTER: 'warn',
  };
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (exited(child)) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Keeps the last of a process's output, to say why it failed. */
function tail(child: ChildProcess): () => string {
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

async function until(what: string, child: ChildProcess, output: () => string, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_MS;
  while (!(await ready().catch(() => false))) {
    if (exited(child)) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}):\n${output()}`);
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${START_MS / 1000} s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Starts the server and the endpoint, registers the endpoint, and waits until a call goes through. */
export async function startRestate(setup: RestateSetup): Promise<RunningRestate> {
  const server = spawn(SERVER, ['--base-dir', setup.baseDir, '--no-logo', '--listen-mode', 'tcp', '--log-disable-ansi-codes', 'true'], {
    env: serverEnvironment(setup),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const serverOutput = tail(server);
  const endpoint = spawn(process.execPath, ['bench/engine/restateService.ts', String(setup.ports.endpoint), setup.echoUrl], {
    cwd: ROOT,
    env: { ...process.env, RESTATE_LOGGING: 'WARN' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const endpointOutput = tail(endpoint);
  const base = `http://127.0.0.1:${setup.ports.ingress}`;
  const admin = `http://127.0.0.1:${setup.ports.admin}`;
  const running: RunningRestate = { base, admin, server, endpoint, stop: async () => void (await Promise.all([stopped(endpoint), stopped(server)])) };
  try {
    await until('restate-server', server, serverOutput, async () => (await fetch(`${admin}/health`)).ok && (await fetch(`${base}/restate/health`)).ok);
    await until('the Restate endpoint', endpoint, endpointOutput, async () => endpointOutput().includes('ready'));
    const registered = await fetch(`${admin}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ uri: `http://127.0.0.1:${setup.ports.endpoint}`, force: true }),
    });
    if (!registered.ok) throw new Error(`registering the endpoint answered ${registered.status}: ${await registered.text()}`);
    // A new deployment reaches the ingress a moment after it is registered.
    await until('the Bench service', server, serverOutput, async () => {
      const answer = await fetch(`${base}/restate/call/Bench/sync`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text":"warm"}',
      });
      return answer.ok && ((await answer.json()) as { text?: string }).text === 'warm';
    });
    return running;
  } catch (error) {
    await running.stop();
    throw error;
  }
}

export const restateSyncTargets = (): Target[] => [{ path: '/restate/call/Bench/sync', headers: {}, body: '{"text":"{text}"}' }];
export const restateChainTargets = (): Target[] => [{ path: '/restate/send/Bench/chain', headers: {}, body: '{"text":"{text}"}' }];

/** Rows of a query of Restate's SQL introspection API. */
async function query<T>(admin: string, sql: string): Promise<T[]> {
  const response = await fetch(`${admin}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query: sql }),
  });
  if (!response.ok) throw new Error(`Restate's /query answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { rows: T[] }).rows;
}

/** The chain's invocations created since `since` and not completed yet (a count, as cheap as the others' polls). */
export async function restateUnfinished(admin: string, since: Date): Promise<number> {
  const [row] = await query<{ count: number }>(
    admin,
    `SELECT count(*) AS count FROM sys_invocation
     WHERE target = 'Bench/chain' AND created_at >= to_timestamp_millis(${since.getTime()}) AND status <> 'completed'`,
  );
  return Number(row?.count ?? 0);
}

/** What became of the chain's invocations created since `since`, from Restate's own records. */
export async function restateCompletions(admin: string, since: Date): Promise<Completion> {
  const rows = await query<{ status: string; completion_result: string | null; created_at: string; completed_at: string | null }>(
    admin,
    `SELECT status, completion_result, created_at, completed_at FROM sys_invocation
     WHERE target = 'Bench/chain' AND created_at >= to_timestamp_millis(${since.getTime()})`,
  );
  return completionOf(
    rows.map(
      (row): Outcome => ({
        outcome: row.status !== 'completed' ? 'unfinished' : row.completion_result === 'success' ? 'completed' : 'failed',
        started: new Date(row.created_at),
        finished: row.completed_at === null ? null : new Date(row.completed_at),
      }),
    ),
  );
}

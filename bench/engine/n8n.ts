// n8n as the engine benchmark's peer (../shared/notes/n8n-peer.md): installed on demand into
// bench/engine/.n8n (never a dependency of Tolstoy, never in git), run on the benchmark's
// PostgreSQL in a database of its own, with the same flows as Tolstoy's built from its own nodes:
// a Webhook answered by its last node (one HTTP Request), and a Webhook answered at once followed
// by three HTTP Requests, each templating what the one before received.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';
import type { Target } from './load.ts';
import { type Completion, completionOf, type Outcome } from './tolstoy.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// The newest n8n whose dependencies the registry here serves (n8n-peer.md).
export const N8N_VERSION = '2.40.7';
const HOME = join(ROOT, 'bench', 'engine', '.n8n');
const BIN = join(HOME, 'node_modules', '.bin', 'n8n');
const run = promisify(execFile);

export const SYNC_PATH = 'bench-sync';
export const CHAIN_PATH = 'bench-chain';

export function n8nInstalled(): boolean {
  return existsSync(BIN);
}

/** Installs n8n when missing (about 2 minutes, 2.8 GB); the reason it could not, or undefined. */
export async function installN8n(): Promise<string | undefined> {
  if (n8nInstalled()) return undefined;
  await mkdir(HOME, { recursive: true });
  await writeFile(join(HOME, 'package.json'), '{ "private": true }\n');
  console.log(`Installing n8n ${N8N_VERSION} into bench/engine/.n8n (once; about 2 minutes) …`);
  // Its install scripts build native modules nothing here needs (n8n-peer.md).
  const installed = await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', `n8n@${N8N_VERSION}`], {
    cwd: HOME,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: Error & { stderr?: string }) => error);
  if (installed instanceof Error)
    return `npm install n8n@${N8N_VERSION} failed: ${(installed.stderr ?? installed.message).trim().split('\n').slice(-3).join(' ')}`;
  return n8nInstalled() ? undefined : `npm install n8n@${N8N_VERSION} left no n8n command`;
}

function httpRequest(name: string, echoUrl: string, text: string, position: number) {
  return {
    id: `node-${name}`,
    name,
    type: 'n8n-nodes-base.httpRequest',
    typeVersion: 4.2,
    position: [position * 220, 0],
    parameters: {
      method: 'POST',
      url: `${echoUrl}/echo`,
      sendBody: true,
      specifyBody: 'json',
      jsonBody: `={{ JSON.stringify({ text: ${text} }) }}`,
      options: {},
    },
  };
}

function webhook(path: string, responseMode: 'lastNode' | 'onReceived') {
  return {
    id: `node-webhook-${path}`,
    name: 'Webhook',
    type: 'n8n-nodes-base.webhook',
    typeVersion: 2,
    position: [0, 0],
    webhookId: `webhook-${path}`,
    parameters: { httpMethod: 'POST', path, responseMode, options: {} },
  };
}

const link = (to: string) => ({ main: [[{ node: to, type: 'main', index: 0 }]] });

function workflows(echoUrl: string) {
  return [
    {
      id: 'benchSyncFlow0001',
      name: 'Echo the input',
      active: false,
      settings: { executionOrder: 'v1' },
      nodes: [webhook(SYNC_PATH, 'lastNode'), httpRequest('Echo', echoUrl, '$json.body.text', 1)],
      connections: { Webhook: link('Echo') },
    },
    {
      id: 'benchChainFlow001',
      name: 'Three steps, each from the one before',
      active: false,
      settings: { executionOrder: 'v1' },
      nodes: [
        webhook(CHAIN_PATH, 'onReceived'),
        httpRequest('One', echoUrl, '$json.body.text', 1),
        httpRequest('Two', echoUrl, "$json.text + ', twice'", 2),
        httpRequest('Three', echoUrl, "$json.text + ', thrice'", 3),
      ],
      connections: { Webhook: link('One'), One: link('Two'), Two: link('Three') },
    },
  ];
}

export interface RunningN8n {
  base: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface N8nSetup {
  env: NodeJS.ProcessEnv;
  databaseUrl: string;
}

/** n8n's database beside Tolstoy's, its settings, and the two workflows imported and published. */
export async function setUpN8n(serverUrl: string, echoUrl: string): Promise<N8nSetup> {
  const server = new URL(serverUrl);
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS n8n').then(() => admin.query('CREATE DATABASE n8n'));
  await admin.end();
  const folder = await mkdtemp(join(tmpdir(), 'tolstoy-bench-n8n-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    N8N_USER_FOLDER: folder,
    DB_TYPE: 'postgresdb',
    DB_POSTGRESDB_HOST: server.hostname,
    DB_POSTGRESDB_PORT: server.port,
    DB_POSTGRESDB_DATABASE: 'n8n',
    DB_POSTGRESDB_USER: decodeURIComponent(server.username),
    DB_POSTGRESDB_PASSWORD: decodeURIComponent(server.password),
    N8N_LISTEN_ADDRESS: '127.0.0.1',
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_TEMPLATES_ENABLED: 'false',
    N8N_LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
  };
  const file = join(folder, 'workflows.json');
  await writeFile(file, JSON.stringify(workflows(echoUrl)));
  await run(BIN, ['import:workflow', `--input=${file}`], { env, maxBuffer: 16 * 1024 * 1024 });
  for (const workflow of workflows(echoUrl)) await run(BIN, ['publish:workflow', `--id=${workflow.id}`], { env, maxBuffer: 16 * 1024 * 1024 });
  const databaseUrl = new URL(serverUrl);
  databaseUrl.pathname = '/n8n';
  return { env, databaseUrl: databaseUrl.toString() };
}

export async function startN8n(setup: N8nSetup): Promise<RunningN8n> {
  const port = await freePort();
  const child = spawn(BIN, ['start'], { env: { ...setup.env, N8N_PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk).slice(-20_000)));
  const base = `http://127.0.0.1:${port}`;
  const running: RunningN8n = {
    base,
    process: child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
  // Ready once both webhooks are registered, which takes n8n some seconds after /healthz.
  const deadline = Date.now() + 120_000;
  for (const path of [SYNC_PATH, CHAIN_PATH]) {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`n8n exited (${child.exitCode}):\n${output}`);
      if (Date.now() > deadline) {
        await running.stop();
        throw new Error(`n8n did not register its webhooks within 120 s:\n${output}`);
      }
      const answer = await fetch(`${base}/webhook/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"warm"}' }).catch(
        () => undefined,
      );
      if (answer && answer.status !== 404 && answer.status < 500) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  return running;
}

export const n8nSyncTargets = (): Target[] => [{ path: `/webhook/${SYNC_PATH}`, headers: {}, body: '{"text":"{text}"}' }];
export const n8nChainTargets = (): Target[] => [{ path: `/webhook/${CHAIN_PATH}`, headers: {}, body: '{"text":"{text}"}' }];

/** What became of the chain workflow's executions started since `since`, from n8n's own records. */
export async function n8nCompletions(databaseUrl: string, since: Date): Promise<Completion> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<Outcome>(
      `SELECT CASE WHEN status = 'success' THEN 'completed' WHEN status IN ('error', 'crashed', 'canceled') THEN 'failed' ELSE 'unfinished' END AS outcome,
         "startedAt" AS started, "stoppedAt" AS finished
       FROM execution_entity WHERE "workflowId" = 'benchChainFlow001' AND "startedAt" >= $1`,
      [since],
    );
    return completionOf(rows);
  } finally {
    await client.end();
  }
}
